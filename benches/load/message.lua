-- wrk script: each thread posts FAQ questions to a conversation of its own (run with as many
-- threads as connections, e.g. -t16 -c16: 16 conversations). Sessions are created by the
-- first request of each thread, through the API itself.
local questions = {
  "起付线是什么", "社保卡在外地刷不了怎么办", "已经出院自费结算了，还能补备案吗",
  "异地就医备案有效期多久", "养老金什么时候涨",
}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  session = nil
  n = 0
end

function request()
  if session == nil then
    return wrk.format("POST", "/v1/sessions", { ["Content-Type"] = "application/json" }, "{}")
  end
  n = n + 1
  local q = questions[(n % #questions) + 1]
  return wrk.format("POST", "/v1/sessions/" .. session .. "/messages",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
    '{"text":"' .. q .. '"}')
end

function response(status, headers, body)
  if session == nil and status == 201 then
    session = body:match('"session_id":"(%x+)"')
    token = body:match('"token":"(%x+)"')
  elseif status ~= 200 then
    errors = (errors or 0) + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do
    failed = failed + (t:get("errors") or 0)
  end
  io.write(string.format("non-200 replies: %d (HTTP errors: %d)\n", failed,
    summary.errors.status))
end

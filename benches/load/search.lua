-- wrk script: GET a search over a round of in-scope questions (each connection walks the list
-- from its own place). The search path is the argument after "--" (default /v1/faq/search?q=;
-- benches/site.sh passes /faq?q= for the residents' search page).
local questions = {
  "社保卡在外地医院刷不了怎么办", "异地就医备案有效期多久", "起付线是什么",
  "已经出院自费结算了，还能补备案吗", "异地就医需要备案吗", "急诊没有备案能报销吗",
  "退休后去外地长期居住怎么备案", "门诊慢特病在外地能直接结算吗",
}

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local paths = {}
local n = 0
function init(args)
  local prefix = args[1] or "/v1/faq/search?q="
  for i, q in ipairs(questions) do
    paths[i] = prefix .. urlencode(q)
  end
  n = math.random(#paths)
end

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

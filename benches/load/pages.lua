-- wrk script: GET /faq/{id} over every entry of the home page (each connection walks the list
-- from its own place). The ids are passed after "--" (benches/site.sh reads them from /).
local paths = {}
local n = 0

function init(args)
  for i, id in ipairs(args) do
    paths[i] = "/faq/" .. id
  end
  n = math.random(#paths)
end

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

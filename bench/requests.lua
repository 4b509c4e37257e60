-- wrk script of bench/http_throughput.sh and bench/abuse_overhead.sh: GET <prefix><number>
-- through a numbers file, with an `Authorization: Bearer` header when a token is given, each
-- thread starting at its own place; counts statuses.
--
-- Usage: wrk -t2 -c64 -d10s -s bench/requests.lua http://127.0.0.1:8121 -- \
--            /v1/numbers/ NUMBERS_FILE [TOKEN [START [STRIDE]]]
--   NUMBERS_FILE "-" requests the prefix itself every time (e.g. /const).
--   thread i starts after line START + i * STRIDE (mod the file's length) and walks on from
--   there, so a run can be given numbers no earlier run asked for (the detector's full path),
--   or keep cycling through a short list (START 0, STRIDE 4999: the defaults).
-- At the end it prints one line:
--   BENCH rps=... requests=... s2xx=... s404=... s403=... s429=... s4xx=... s5xx=... other=...
--         connect=... read=... write=... timeout=... p50_us=... p99_us=...
-- (s4xx = 4xx other than 404, 403 and 429; 403 = the account is suspended.)

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = args[1] or "/"
  local file = args[2] or "-"
  local token = args[3]
  local start = tonumber(args[4] or "0")
  local stride = tonumber(args[5] or "4999")
  headers = {}
  if token ~= nil and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  paths = {}
  if file == "-" then
    paths[1] = prefix
  else
    for line in io.lines(file) do
      if line ~= "" then
        paths[#paths + 1] = prefix .. line
      end
    end
  end
  index = (start + id * stride) % #paths
  s2xx, s404, s403, s429, s4xx, s5xx, other = 0, 0, 0, 0, 0, 0, 0
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index], headers)
end

function response(status, _, _)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status == 404 then
    s404 = s404 + 1
  elseif status == 403 then
    s403 = s403 + 1
  elseif status == 429 then
    s429 = s429 + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, _)
  local total = { s2xx = 0, s404 = 0, s403 = 0, s429 = 0, s4xx = 0, s5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do
      total[name] = total[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH rps=%.1f requests=%d s2xx=%d s404=%d s403=%d s429=%d s4xx=%d s5xx=%d other=%d "
      .. "connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests,
    total.s2xx, total.s404, total.s403, total.s429, total.s4xx, total.s5xx, total.other,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end

-- wrk script for bench/run.py: every request a new destination, spread over many tokens.
--
-- GET /api/v2/MakeSMS.php?tsid=<token>&dest=55119NNNNNNNN&message=hello+world
--   dest  : 5511 9 + 8 digits from a per-thread counter (seeded by BENCH_SALT and the thread
--           number), so no destination repeats within a run and dedup (244) never fires
--   token : round robin over the lines of the file named by BENCH_TOKENS
-- response() counts answers by "<http status>:<body status_code>" (e.g. 200:0, 400:250,
-- 503:503; "-" when the body has none); done() prints one BENCHRESULT line and one
-- BENCHCODE line per code for run.py.
--
-- env: BENCH_TOKENS (file, required), BENCH_SALT (number, default 0),
--      BENCH_MESSAGE (url-encoded text, default hello+world)

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  local file = os.getenv("BENCH_TOKENS")
  if file == nil or file == "" then error("BENCH_TOKENS is not set") end
  for line in io.lines(file) do
    if line ~= "" then table.insert(tokens, line) end
  end
  if #tokens == 0 then error("no tokens in " .. file) end
  ntok = #tokens
  message = os.getenv("BENCH_MESSAGE")
  if message == nil or message == "" then message = "hello+world" end
  local salt = tonumber(os.getenv("BENCH_SALT") or "0") or 0
  base = (salt + tid * 20000000) % 100000000
  tok0 = (tid * 7919) % ntok
  n = 0
  codes = {}
end

function request()
  n = n + 1
  local dest = string.format("55119%08d", (base + n) % 100000000)
  local tok = tokens[((tok0 + n) % ntok) + 1]
  return wrk.format("GET", "/api/v2/MakeSMS.php?tsid=" .. tok .. "&dest=" .. dest .. "&message=" .. message)
end

function response(status, headers, body)
  local code = string.match(body or "", '"status_code"%s*:%s*"([^"]*)"') or "-"
  local key = status .. ":" .. code
  codes[key] = (codes[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c then
      for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
  for k, v in pairs(total) do
    io.write(string.format("BENCHCODE %s %d\n", k, v))
  end
end

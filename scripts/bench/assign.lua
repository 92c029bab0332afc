-- POST /v1/assign against every running experiment.
--   SHOPPERS=N  returning shoppers are drawn from a pool of N (as checkout sees them);
--   NEW=F       a share F (0..1) of requests is a shopper never seen before, named PREFIX-...;
--               NEW=1 makes every request a new shopper. SHOPPERS=0 means NEW=1.
--   WARM=T      the T threads walk the pool in turn instead of drawing from it, so that a run
--               of at least N requests sees every returning shopper (the warm-up).
local pool = tonumber(os.getenv("SHOPPERS") or "10000")
local new = tonumber(os.getenv("NEW") or "0")
local prefix = os.getenv("PREFIX") or "new"
local warm = tonumber(os.getenv("WARM") or "0")
if pool == 0 then new = 1 end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local counter = 0
function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
end

request = function()
  counter = counter + 1
  local id
  if new >= 1 or (new > 0 and math.random() < new) then
    -- Unique across threads and runs: the thread's number and its own counter.
    id = prefix .. "-" .. (tid or 0) .. "-" .. counter
  elseif warm > 0 then
    id = "shopper-" .. ((tid - 1) + warm * (counter - 1)) % pool + 1
  else
    id = "shopper-" .. math.random(1, pool)
  end
  local body = string.format(
    '{"shopper_id":"%s","attributes":{"country":"IT","device":"mobile","visits":5}}', id)
  return wrk.format("POST", "/v1/assign", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer dev-checkout",
  }, body)
end

-- PACE_MS=D: each connection waits D milliseconds after an answer before its next request, so
-- that the handlers are measured at a rate below their capacity (32 connections at 2 ms: some
-- 15,000 requests a second) rather than saturated.
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end

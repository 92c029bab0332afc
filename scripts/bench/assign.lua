-- POST /v1/assign against every running experiment. SHOPPERS=N draws shoppers from a pool of
-- N (returning shoppers, as checkout sees them); SHOPPERS=0 makes every request a new shopper.
local pool = tonumber(os.getenv("SHOPPERS") or "10000")
local counter = 0
request = function()
  counter = counter + 1
  local id
  if pool > 0 then id = math.random(1, pool) else id = counter .. "-" .. math.random(1, 1000000000) end
  local body = string.format(
    '{"shopper_id":"shopper-%s","attributes":{"country":"IT","device":"mobile","visits":5}}', id)
  return wrk.format("POST", "/v1/assign", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer dev-checkout",
  }, body)
end

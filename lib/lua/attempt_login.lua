-- The per-login rules, for one (login, client) pair; every key carries the login's hash tag.
-- KEYS[1] pair counter (this client's counted attempts for this login), KEYS[2] login counter (every client's),
-- KEYS[3] this pair's attempts in flight.
-- ARGV[1] pair max, ARGV[2] pair window (s), ARGV[3] login max, ARGV[4] login window (s),
-- ARGV[5] in-flight marker lifetime (ms), ARGV[6] 1 = count, 0 = only look.
-- Returns {0, 0} go (counted when asked), {2, ttl} pair budget spent, {3, ttl} the login is past its budget and this
-- client has failed for it, {4, pttl} the login is past its budget and this client's previous attempt is still being
-- verified (wait for its outcome). A refused attempt is not counted.
local function ttl(k)
  local t = redis.call('TTL', k)
  if t < 1 then return 1 end
  return t
end
local pair = tonumber(redis.call('GET', KEYS[1]) or '0')
if pair >= tonumber(ARGV[1]) then return {2, ttl(KEYS[1])} end
local login = tonumber(redis.call('GET', KEYS[2]) or '0')
if login >= tonumber(ARGV[3]) and pair > 0 then
  -- Every attempt is counted in the pair before it is hashed and a success clears the pair: a count above zero is
  -- a failure, unless an attempt of this client is still in flight (pooled connections logging in at once).
  if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then return {4, math.max(1, redis.call('PTTL', KEYS[3]))} end
  return {3, math.min(ttl(KEYS[2]), ttl(KEYS[1]))}
end
if ARGV[6] == '0' then return {0, 0} end
local function count(k, window)
  local n = redis.call('INCR', k)
  if n == 1 or redis.call('TTL', k) < 0 then redis.call('EXPIRE', k, tonumber(window)) end
end
count(KEYS[1], ARGV[2])
count(KEYS[2], ARGV[4])
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
return {0, 0}

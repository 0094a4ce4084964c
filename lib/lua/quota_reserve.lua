-- Reserves `bytes` of a tenant's monthly traffic, if they fit, atomically across every node.
-- KEYS[1] tenant hash (traffic_bytes), KEYS[2] month usage hash (bytes, topup), KEYS[3] reservations zset,
-- KEYS[4] committed marker of this id.
-- ARGV[1] id, ARGV[2] bytes, ARGV[3] now (ms), ARGV[4] reservation lifetime (ms).
-- Returns {status, committed, pending, limit}: committed bytes of the month, bytes held by reservations in flight
-- (this one included when it was taken). Status 1 reserved, 0 does not fit, 2 already committed, 3 already
-- reserved, 4 unknown tenant.
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local traffic = redis.call('HGET', KEYS[1], 'traffic_bytes')
if not traffic then return {4, 0, 0, 0} end
local limit = tonumber(traffic) + tonumber(redis.call('HGET', KEYS[2], 'topup') or '0')
local used = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
if redis.call('EXISTS', KEYS[4]) == 1 then return {2, used, 0, limit} end
local pending = 0
local mine = false
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local id, b = string.match(m, '^(.*)|(%d+)$')
  if id == ARGV[1] then mine = true end
  pending = pending + tonumber(b)
end
if mine then return {3, used, pending, limit} end
local want = tonumber(ARGV[2])
if used + pending + want > limit then return {0, used, pending, limit} end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1] .. '|' .. ARGV[2])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]) * 2)
return {1, used, pending + want, limit}

-- Reads a tenant's month: committed bytes, bytes reserved by messages in flight, and the limit.
-- KEYS[1] tenant hash, KEYS[2] month usage hash, KEYS[3] reservations zset; ARGV[1] now (ms).
-- Returns {found, used, pending, limit, messages}.
local traffic = redis.call('HGET', KEYS[1], 'traffic_bytes')
if not traffic then return {0, 0, 0, 0, 0} end
local limit = tonumber(traffic) + tonumber(redis.call('HGET', KEYS[2], 'topup') or '0')
local pending = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf')) do
  pending = pending + tonumber(string.match(m, '|(%d+)$'))
end
local used = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local messages = tonumber(redis.call('HGET', KEYS[2], 'messages') or '0')
return {1, used, pending, limit, messages}

-- Turns a reservation into counted traffic, exactly once per message id however often it is called (at the queue
-- hand-off, again at delivery after a crash or a lost reply), and reports the warning thresholds it crossed.
-- KEYS[1] tenant hash, KEYS[2] month usage hash, KEYS[3] reservations zset, KEYS[4] committed marker,
-- KEYS[5] day usage hash.
-- ARGV[1] id, ARGV[2] bytes, ARGV[3] recipients, ARGV[4] usage ttl (s), ARGV[5] marker ttl (s): longer than a message can stay queued,
-- ARGV[6] thresholds in percent, comma-separated.
-- Returns {status, used_after, limit, crossed thresholds...}: status 1 counted, 2 already counted.
local member = ARGV[1] .. '|' .. ARGV[2]
redis.call('ZREM', KEYS[3], member)
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[5])) then return {2, 0, 0} end
local used = redis.call('HINCRBY', KEYS[2], 'bytes', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'messages', 1)
redis.call('HINCRBY', KEYS[5], 'bytes', ARGV[2])
redis.call('HINCRBY', KEYS[5], 'messages', 1)
redis.call('HINCRBY', KEYS[5], 'recipients', ARGV[3])
for i = 2, 5, 3 do
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4])) end
end
local limit = tonumber(redis.call('HGET', KEYS[1], 'traffic_bytes') or '0') + tonumber(redis.call('HGET', KEYS[2], 'topup') or '0')
local result = {1, used, limit}
if limit > 0 then
  for pct in string.gmatch(ARGV[6], '%d+') do
    if used * 100 >= limit * tonumber(pct) and redis.call('HSETNX', KEYS[2], 'warned_' .. pct, '1') == 1 then
      table.insert(result, tonumber(pct))
    end
  end
end
return result

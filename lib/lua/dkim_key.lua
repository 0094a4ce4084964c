-- The DKIM keys of one domain (lib/dkim.ts), one HASH: active, pending, retiring, retiring_until, key:<selector>.
-- Every change is one script, so two nodes (or a CLI and a node) never leave a half-made rotation.
-- KEYS[1] the domain's hash. ARGV[1] the operation, then its arguments.
local k = KEYS[1]
local op = ARGV[1]

if op == 'create' then
  -- ARGV: selector, key JSON. The first key of a domain; a domain that has one keeps it.
  local active = redis.call('HGET', k, 'active')
  if active then return {'exists', active} end
  if redis.call('HEXISTS', k, 'key:' .. ARGV[2]) == 1 then return {'taken', ARGV[2]} end
  redis.call('HSET', k, 'active', ARGV[2], 'key:' .. ARGV[2], ARGV[3])
  return {'created', ARGV[2]}
end

if op == 'pending' then
  -- ARGV: selector, key JSON. A rotation's new key, signed with only once its record is seen in DNS.
  local active = redis.call('HGET', k, 'active')
  if not active then return {'none', ''} end
  local pending = redis.call('HGET', k, 'pending')
  if pending then return {'pending', pending} end
  if redis.call('HEXISTS', k, 'key:' .. ARGV[2]) == 1 then return {'taken', ARGV[2]} end
  redis.call('HSET', k, 'pending', ARGV[2], 'key:' .. ARGV[2], ARGV[3])
  return {'created', ARGV[2]}
end

if op == 'switch' then
  -- ARGV: the pending selector, the active one it replaces, retiring_until (ms). Only if nothing moved meanwhile.
  if redis.call('HGET', k, 'pending') ~= ARGV[2] or redis.call('HGET', k, 'active') ~= ARGV[3] then return {'moved', ''} end
  local older = redis.call('HGET', k, 'retiring')
  if older and older ~= ARGV[3] then redis.call('HDEL', k, 'key:' .. older) end
  redis.call('HSET', k, 'active', ARGV[2], 'retiring', ARGV[3], 'retiring_until', ARGV[4])
  redis.call('HDEL', k, 'pending')
  return {'switched', ARGV[2]}
end

if op == 'forget' then
  -- ARGV: the retiring selector, now (ms). Drops a retired key once its record need not be published any more.
  if redis.call('HGET', k, 'retiring') ~= ARGV[2] then return {'moved', ''} end
  if tonumber(redis.call('HGET', k, 'retiring_until') or '0') > tonumber(ARGV[3]) then return {'early', ''} end
  redis.call('HDEL', k, 'key:' .. ARGV[2], 'retiring', 'retiring_until')
  return {'forgotten', ARGV[2]}
end

return redis.error_reply('dkim_key: unknown operation ' .. tostring(op))

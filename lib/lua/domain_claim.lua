-- Adds or verifies a tenant's sender domain, atomically against every other tenant's: a domain, its parents and its
-- subdomains are verified for one tenant at most (lib/domains.ts addDomain, verifyDomain). Only verified domains
-- are owned: an added (pending) domain blocks nobody, so no tenant can squat a domain it does not control.
-- KEYS[1] owners HASH (verified domain -> slug), KEYS[2] names ZSET (verified domains, labels reversed),
-- KEYS[3] the tenant's domains HASH (domain -> JSON entry).
-- ARGV[1] mode 'add' or 'verify', ARGV[2] slug, ARGV[3] domain, ARGV[4] its ZSET member (labels reversed),
-- ARGV[5] add: the new entry (JSON); verify: the token that was looked up, ARGV[6] verify: time (ISO),
-- ARGV[7..] the domain's parents (down to two labels).
-- Returns {'ok'}; add: {'mine'} (already added), {'covered', parent} (a parent is this tenant's, verified);
-- verify: {'gone'} (removed, or added again with a new token, meanwhile); both: {'taken', name} (the domain, a
-- parent or a subdomain is verified for another tenant).
local mode, slug, domain, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HGET', KEYS[3], domain)
if mode == 'add' and cur then return {'mine'} end
local entry
if mode == 'verify' then
  if not cur then return {'gone'} end
  entry = cjson.decode(cur)
  if entry.token ~= ARGV[5] then return {'gone'} end
end
local owner = redis.call('HGET', KEYS[1], domain)
if owner and owner ~= slug then return {'taken', domain} end
for i = 7, #ARGV do
  local o = redis.call('HGET', KEYS[1], ARGV[i])
  if o and o ~= slug then return {'taken', ARGV[i]} end
  if o == slug and mode == 'add' then return {'covered', ARGV[i]} end
end
-- subdomains: the members "<member>.<more labels>", i.e. from "<member>." up to (excluding) "<member>/"
for _, child in ipairs(redis.call('ZRANGEBYLEX', KEYS[2], '[' .. member .. '.', '(' .. member .. '/')) do
  local labels = {}
  for label in string.gmatch(child, '[^.]+') do table.insert(labels, 1, label) end
  local o = redis.call('HGET', KEYS[1], table.concat(labels, '.'))
  if o and o ~= slug then return {'taken', table.concat(labels, '.')} end
end
if mode == 'add' then
  redis.call('HSET', KEYS[3], domain, ARGV[5])
  return {'ok'}
end
if entry.status ~= 'verified' then
  entry.status = 'verified'
  entry.verified_at = ARGV[6]
  redis.call('HSET', KEYS[3], domain, cjson.encode(entry))
end
redis.call('HSET', KEYS[1], domain, slug)
redis.call('ZADD', KEYS[2], 0, member)
return {'ok'}

-- Sets a tenant's copy of its package's allowance, only while the tenant is still on that package: a tenant moved
-- to another package meanwhile never gets the old package's allowance (lib/packages.ts setPackage).
-- KEYS[1] tenant hash; ARGV[1] package name, ARGV[2] allowance in bytes. Returns 1 when set, 0 when not on it.
if redis.call('HGET', KEYS[1], 'package') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'traffic_bytes', ARGV[2])
return 1

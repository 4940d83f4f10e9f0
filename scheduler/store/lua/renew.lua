-- Extend the lease only if it is still exactly ours (never a bare PEXPIRE on the lease).
-- KEYS[1] lease; ARGV[1] our lease value, ARGV[2] ttl in ms. Returns 1, or 0 if not ours.
-- A lease key of another type is not ours either: checked first, since GET would fail on it.
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0

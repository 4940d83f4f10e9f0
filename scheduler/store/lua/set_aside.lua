-- Move a shared key that holds the wrong type out of the way, keeping its value to inspect.
-- KEYS[1] lease, KEYS[2] the key, KEYS[3] where it goes; ARGV[1] our lease value,
-- ARGV[2] the type it was found to hold (it is moved only if it still holds that type).
-- Returns -1 when the lease is not ours, 1 when moved, 0 when the key changed meanwhile.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('TYPE', KEYS[2])['ok'] ~= ARGV[2] then
  return 0
end
redis.call('RENAME', KEYS[2], KEYS[3])
return 1

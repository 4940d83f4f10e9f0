-- Give the lease up only if it is still ours, and wake the standbys blocked on the handover list.
-- KEYS[1] lease, KEYS[2] handover list; ARGV[1] our lease value, ARGV[2] wake-ups to push.
-- Returns 1 if released, 0 if it was not ours.
-- Types are checked before anything is written: a command failing halfway through would
-- leave the lease deleted and the call reported as an error.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local handover = redis.call('TYPE', KEYS[2])['ok']
-- A handover key of another type gets no wake-ups: standbys then notice the vacancy by polling.
if handover == 'none' or handover == 'list' then
  for _ = 1, tonumber(ARGV[2]) do
    redis.call('LPUSH', KEYS[2], '1')
  end
  -- Wake-ups nobody popped must not wake a standby much later.
  redis.call('PEXPIRE', KEYS[2], 2000)
end
return 1

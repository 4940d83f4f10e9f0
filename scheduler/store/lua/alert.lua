-- Open or close one job's alert of the dead man's switch under the lease, and record it in
-- the history stream, in one step: two leaders for a moment still raise an episode once.
-- KEYS[1] lease, KEYS[2] alerts (hash job -> JSON), KEYS[3] history (stream)
-- ARGV[1] our lease value, ARGV[2] job, ARGV[3] the alert's value as the leader read it
-- ('' = none), ARGV[4] the new value ('' = remove the alert), ARGV[5] reason, ARGV[6] slot
-- ('' = none), ARGV[7] our token, ARGV[8] the history stream's cap.
-- Returns {0} when the lease is not ours; {2, key, type} when a key holds the wrong type
-- (nothing written); {1, 1} when done; {1, 0} when the alert is no longer what was read
-- (someone else changed it: nothing written).
--@fenced
local unfit = fenced({'string', 'hash', 'stream'})
if unfit then
  return unfit
end
local job = ARGV[2]
if (redis.call('HGET', KEYS[2], job) or '') ~= ARGV[3] then
  return {1, 0}
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], job)
else
  redis.call('HSET', KEYS[2], job, ARGV[4])
end
-- A job that never fired has no slot: the entry then has no slot field (readers take it so).
if ARGV[6] == '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'job', job, 'kind', 'alert',
    'reason', ARGV[5], 'token', ARGV[7])
else
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'job', job, 'kind', 'alert',
    'reason', ARGV[5], 'slot', ARGV[6], 'token', ARGV[7])
end
return {1, 1}

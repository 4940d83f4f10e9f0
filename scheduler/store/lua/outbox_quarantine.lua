-- Move one unreadable entry from the head of the outbox to the quarantine list, under the
-- fencing check, so that it stops blocking the entries behind it and stays for inspection.
-- KEYS[1] lease, KEYS[2] outbox, KEYS[3] quarantine; ARGV[1] our lease value, ARGV[2] the
-- entry, ARGV[3] how many entries the quarantine keeps (the newest).
-- The entry moves only while it is still the head: one another leader already handled, or a
-- resent call, never moves anything else.
-- Returns {0} when the lease is not ours, {2, key, type} when a key holds the wrong type,
-- else {1, 1} when moved and {1, 0} when the head was another entry.
--@fenced
local unfit = fenced({'string', 'list', 'list'})
if unfit then
  return unfit
end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then
  return {1, 0}
end
redis.call('LPOP', KEYS[2])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
return {1, 1}

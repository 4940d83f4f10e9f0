-- Remove published entries from the head of the outbox, under the fencing check.
-- KEYS[1] lease, KEYS[2] outbox; ARGV[1] our lease value, ARGV[2..] the entries published,
-- oldest first. Entries are removed only while the head matches, so a resent ack, or an
-- entry another leader already removed, never removes anything else.
-- Returns -1 when the lease is not ours, else the number of entries removed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local removed = 0
for i = 2, #ARGV do
  if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[i] then
    break
  end
  redis.call('LPOP', KEYS[2])
  removed = removed + 1
end
return removed

-- Give a run claim up, only if the attempt with this nonce still holds it (never a bare DEL):
-- used when the task body rejected its message with requeue, so the requeued copy runs.
-- KEYS[1] the claim (Keys.run_claim); ARGV[1] the attempt's nonce. Returns 1, or 0 if not ours.
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^%a+ %d+ %d+ (%S+) ') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

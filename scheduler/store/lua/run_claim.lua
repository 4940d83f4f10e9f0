-- The worker hook's claim of one delivery of a fired task: run once per task id.
-- KEYS[1] the claim (Keys.run_claim), KEYS[2] the executions stream
-- ARGV[1] the delivery's retries count, ARGV[2] attempt nonce (random per delivery),
-- ARGV[3] worker name, ARGV[4] TTL of a "started" claim in ms,
-- ARGV[5] job, ARGV[6] slot, ARGV[7] task id, ARGV[8] stream cap.
-- A claim is "<state> <retries> <since ms> <nonce> <worker>", state started|retrying|done.
-- A delivery may run when there is no claim, or when its retries count is higher than the
-- claim's (self.retry() sent it); otherwise it repeats an attempt that already ran or runs.
-- Returns {1} claimed now, {2} already ours (a resent claim of this attempt: nothing written),
-- {3} claimed over a value this package did not write, or
-- {0, state, retries, since ms, worker, ms left}: a repeat, nothing written.
local retries = tonumber(ARGV[1])
local status = 1
local current = redis.call('GET', KEYS[1])
if current then
  local state, held, since, nonce, worker =
    string.match(current, '^(%a+) (%d+) (%d+) (%S+) (.*)$')
  if state == nil then
    status = 3
  elseif nonce == ARGV[2] then
    return {2}
  elseif retries <= tonumber(held) then
    return {0, state, held, since, worker, redis.call('PTTL', KEYS[1])}
  end
end
local t = redis.call('TIME')
local now_ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], table.concat({'started', ARGV[1], now_ms, ARGV[2], ARGV[3]}, ' '),
  'PX', ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'job', ARGV[5], 'slot', ARGV[6],
  'task_id', ARGV[7], 'worker', ARGV[3], 'retries', ARGV[1])
return {status}

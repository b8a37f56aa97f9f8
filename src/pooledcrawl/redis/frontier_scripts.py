"""The Lua scripts of the Redis frontier (:mod:`pooledcrawl.frontier.redis`). Each runs
atomically in Redis, so two workers never enqueue the same URL twice, and a job's
seeding and end are decided once."""

__all__ = ["ADD_SEEN", "BEAT", "CLAIM_SEEDING", "ENQUEUE", "MOVE_DUE", "REMAINING"]

# A fingerprint is 8 raw bytes (a set member of 8 bytes costs ~48 bytes of Redis
# memory, 16 hex digits ~64). ``is_new`` adds one to the job's seen set, or to its
# Bloom filter when ``bits`` > 0, and says whether it was new.
IS_NEW = """
local function u32(s, from)
  local a, b, c, d = string.byte(s, from, from + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function is_new(seen, bits, fp)
  if bits == 0 then
    return redis.call('SADD', seen, fp) == 1
  end
  -- 7 bit positions by double hashing on the fingerprint's two halves, set in one
  -- BITFIELD call that returns the old bits: new if any of them was 0
  local h1 = u32(fp, 1) % bits
  local h2 = u32(fp, 5) % bits
  if h2 == 0 then h2 = 1 end
  local ops = {}
  for k = 0, 6 do
    local n = #ops
    ops[n + 1] = 'SET'
    ops[n + 2] = 'u1'
    ops[n + 3] = string.format('%d', (h1 + k * h2) % bits)
    ops[n + 4] = 1
  end
  local fresh = false
  for _, old in ipairs(redis.call('BITFIELD', seen, unpack(ops))) do
    if old == 0 then fresh = true end
  end
  return fresh
end
"""

# KEYS: seen, priorities. ARGV: stream prefix, group, bloom bits (0 = exact set),
# then (fingerprint, priority, payload) triples. A fingerprint with a 9th byte in
# front (dont_filter) is recorded but enqueued even if seen before.
ENQUEUE = (
    IS_NEW
    + """
local bits = tonumber(ARGV[3])
local added = 0
for i = 4, #ARGV, 3 do
  local fp = ARGV[i]
  local force = #fp == 9
  if force then fp = string.sub(fp, 2) end
  if is_new(KEYS[1], bits, fp) or force then
    local stream = ARGV[1] .. ARGV[i + 1]
    if redis.call('ZADD', KEYS[2], 'NX', ARGV[i + 1], ARGV[i + 1]) == 1 then
      redis.pcall('XGROUP', 'CREATE', stream, ARGV[2], '0', 'MKSTREAM')
    end
    redis.call('XADD', stream, '*', 'r', ARGV[i + 2])
    added = added + 1
  end
end
return added
"""
)

# KEYS: seen. ARGV: bloom bits, fingerprint. -> 1 when it was new.
ADD_SEEN = IS_NEW + "return is_new(KEYS[1], tonumber(ARGV[1]), ARGV[2]) and 1 or 0\n"

# KEYS: delayed, priorities. ARGV: stream prefix, group, now, max count.
# Members are "<priority>|<payload>".
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, member in ipairs(due) do
  local bar = string.find(member, '|', 1, true)
  local priority = string.sub(member, 1, bar - 1)
  local stream = ARGV[1] .. priority
  if redis.call('ZADD', KEYS[2], 'NX', priority, priority) == 1 then
    redis.pcall('XGROUP', 'CREATE', stream, ARGV[2], '0', 'MKSTREAM')
  end
  redis.call('XADD', stream, '*', 'r', string.sub(member, bar + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# KEYS: workers. ARGV: worker. Heartbeats in server time: one clock for every machine.
BEAT = """
redis.call('ZADD', KEYS[1], redis.call('TIME')[1], ARGV[1])
"""

# KEYS: meta, workers. ARGV: worker, seconds without a heartbeat that mean dead.
# -> 0: seeded already; 1: this worker seeds; 2: another, live worker is seeding.
CLAIM_SEEDING = """
local now = tonumber(redis.call('TIME')[1])
if redis.call('HGET', KEYS[1], 'seeded') then return 0 end
local seeder = redis.call('HGET', KEYS[1], 'seeder')
if seeder and seeder ~= ARGV[1] then
  local beat = redis.call('ZSCORE', KEYS[2], seeder)
  if beat and tonumber(beat) >= now - tonumber(ARGV[2]) then return 2 end
end
redis.call('HSET', KEYS[1], 'seeder', ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
"""

# KEYS: priorities, delayed, meta. ARGV: stream prefix.
# -> {pending entries, delayed, seeded, the job exists (not purged)}
REMAINING = """
local total = 0
for _, p in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  total = total + redis.call('XLEN', ARGV[1] .. p)
end
return {total, redis.call('ZCARD', KEYS[2]), redis.call('HGET', KEYS[3], 'seeded') or '',
        redis.call('HEXISTS', KEYS[3], 'spider')}
"""

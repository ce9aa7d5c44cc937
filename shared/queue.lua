#!lua name=musicq_${VERSION}
-- The queue's Redis function library: each state change of a room is exactly one call of
-- one of these functions, atomic in Redis. Loaded once per Redis (shared/functions.py);
-- persisted and replicated with the data, so a restart, a failover or a new replica has it.
--
-- Every key a function touches comes in through KEYS (none is built here), and only the
-- keys it touches, since each argument costs Redis time. Every write's KEYS start with
--   [1] queue    zset: score minus the votes, member <seq><id>: the play order
--   [2] tracks   hash: id -> <seq> US title US artist US duration US added_at
--   [3] version  counter: bumped by every change of the room
--   [4] idem     string, ${IDEMPOTENCY_TTL} s: this write's first reply, for its retries
-- then the ones it alone needs: seq (counter: add sequence numbers); ballots (hash:
-- <seq><voter> -> 1 or -1) and voted (zset, all scores 0, <seq><voter>: one track's
-- ballots are one range); now (the now-playing entry), history (list, newest first) and
-- played (hash: id -> its newest history entry). ARGV: [1] the idempotency fingerprint
-- ('' for none), [2] the room's events channel, then the operation's own.
--
-- A success replies {'ok', kind, version, length, <track>, <edge>}: <track> is id, score,
-- record for a queued track, the history entry for a play, nothing for a clear; <edge> is
-- the member, score and record of the track at the head's last place (${EVENT_HEAD}). When
-- the room has live listeners on its channel, the same fields, joined with RS, are
-- published: with the track the change was about, the edge is the only one a single
-- change can bring into the head, so a node keeps a room's head by applying changes to it
-- (shared/live.py) and nothing here grows with the head. Without listeners neither the
-- edge nor the length is looked up ('' in the reply: the caller reads the length with
-- the head, natively), which saves four calls of the five or so a write costs. A refusal
-- is a one-word reply: {'duplicate'}, {'full'}, {'not_found'}, {'empty'},
-- {'idempotency_mismatch'}.

local US, RS = '\31', '\30'
local SEQ_WIDTH, ID_AT, EDGE = ${SEQ_WIDTH}, ${SEQ_WIDTH} + 1, ${EVENT_HEAD} - 1

local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
end

-- A write's first reply is kept under its idempotency key: a retry gets it back unchanged.
local function replay(keys, args)
  local fingerprint = args[1]
  if fingerprint == '' then return nil end
  local prior = redis.call('GET', keys[4])
  if not prior then return nil end
  if string.sub(prior, 1, #fingerprint + 1) ~= fingerprint .. '\n' then
    return {'idempotency_mismatch'}
  end
  return cjson.decode(string.sub(prior, #fingerprint + 2))
end

local function remember(keys, args, reply)
  if args[1] ~= '' then
    redis.call('SET', keys[4], args[1] .. '\n' .. cjson.encode(reply), 'EX', ${IDEMPOTENCY_TTL})
  end
  return reply
end

-- Every change ends here: a new version and, for the room's live listeners if it has any,
-- the length, the edge of the head and the event; then the reply.
local function finish(keys, args, kind, a, b, c)
  local out = {'ok', kind, redis.call('INCR', keys[3]), ''}
  if a then out[5] = a end
  if b then out[6], out[7] = b, c end
  local n = #out
  if redis.call('PUBSUB', 'SHARDNUMSUB', args[2])[2] == 0 then
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
    return remember(keys, args, out)
  end
  out[4] = redis.call('ZCARD', keys[1])
  local edge = redis.call('ZRANGE', keys[1], EDGE, EDGE, 'WITHSCORES')
  if edge[1] then
    out[n + 1], out[n + 2] = edge[1], edge[2]
    out[n + 3] = redis.call('HGET', keys[2], string.sub(edge[1], ID_AT))
  else
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
  end
  redis.call('SPUBLISH', args[2], table.concat(out, RS))
  return remember(keys, args, out)
end

-- A queued track's ballots go with it (played or removed): its range in the index.
-- KEYS [5] ballots [6] voted
local function drop_ballots(keys, seq)
  local first, last = '[' .. seq, '[' .. seq .. '\255'
  local fields = redis.call('ZRANGEBYLEX', keys[6], first, last)
  if #fields > 0 then
    redis.call('HDEL', keys[5], unpack(fields))
    redis.call('ZREMRANGEBYLEX', keys[6], first, last)
  end
end

-- KEYS [5] seq. ARGV: [3] id [4] title [5] artist [6] duration [7] max queue length
local function add(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[3]
  if redis.call('ZCARD', keys[1]) >= tonumber(args[7]) then
    return remember(keys, args, {'full'})
  end
  -- a duplicate burns a sequence number: they only need to grow
  local seq = string.format('%0' .. SEQ_WIDTH .. 'd', redis.call('INCR', keys[5]))
  local record = seq .. US .. args[4] .. US .. args[5] .. US .. args[6] .. US .. now_ms()
  if redis.call('HSETNX', keys[2], id, record) == 0 then
    return remember(keys, args, {'duplicate'})
  end
  redis.call('ZADD', keys[1], 0, seq .. id)
  return finish(keys, args, 'add', id, '0', record)
end

-- KEYS [5] ballots [6] voted. ARGV: [3] id
local function remove(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[3]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local seq = string.sub(record, 1, SEQ_WIDTH)
  local score = redis.call('ZSCORE', keys[1], seq .. id)
  redis.call('ZREM', keys[1], seq .. id)
  redis.call('HDEL', keys[2], id)
  drop_ballots(keys, seq)
  return finish(keys, args, 'remove', id, score, record)
end

-- KEYS [5] ballots [6] voted. ARGV: [3] id [4] direction, 1 or -1 [5] voter ('' for an
-- anonymous vote)
local function vote(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id, direction, voter = args[3], tonumber(args[4]), args[5]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local member = string.sub(record, 1, SEQ_WIDTH) .. id
  local delta = direction
  if voter ~= '' then
    local ballot = string.sub(record, 1, SEQ_WIDTH) .. voter
    local prior = tonumber(redis.call('HGET', keys[5], ballot) or '0')
    if prior == direction then
      -- The voter's ballot already says this: nothing changes, so no new version.
      local v = tonumber(redis.call('GET', keys[3]) or '0')
      local out = {'ok', 'vote', v, '', id, redis.call('ZSCORE', keys[1], member), record,
                   '', '', ''}
      return remember(keys, args, out)
    end
    redis.call('HSET', keys[5], ballot, direction)
    if prior == 0 then redis.call('ZADD', keys[6], 0, ballot) end
    delta = direction - prior
  end
  local score = redis.call('ZINCRBY', keys[1], -delta, member)
  return finish(keys, args, 'vote', id, score, record)
end

-- KEYS [5] ballots [6] voted [7] now [8] history [9] played. ARGV: [3] history limit
local function play_next(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local popped = redis.call('ZPOPMIN', keys[1])
  if #popped == 0 then return remember(keys, args, {'empty'}) end
  local seq, id = string.sub(popped[1], 1, SEQ_WIDTH), string.sub(popped[1], ID_AT)
  local record = redis.call('HGET', keys[2], id)
  redis.call('HDEL', keys[2], id)
  drop_ballots(keys, seq)
  -- id, then the record without its seq (title .. added_at), then votes and played_at
  local entry = id .. string.sub(record, ID_AT) .. US .. string.format('%d', -popped[2])
    .. US .. now_ms()
  redis.call('SET', keys[7], entry)
  redis.call('HSET', keys[9], id, entry)
  local kept = redis.call('LPUSH', keys[8], entry)
  for _ = 1, kept - tonumber(args[3]) do
    local old = redis.call('RPOP', keys[8])
    local old_id = string.sub(old, 1, string.find(old, US, 1, true) - 1)
    if redis.call('HGET', keys[9], old_id) == old then redis.call('HDEL', keys[9], old_id) end
  end
  return finish(keys, args, 'play', entry)
end

-- KEYS [5] ballots [6] voted [7] now [8] history [9] played
local function clear(keys, args)
  local done = replay(keys, args)
  if done then return done end
  redis.call('UNLINK', keys[1], keys[2], keys[5], keys[6], keys[7], keys[8], keys[9])
  return finish(keys, args, 'clear')
end

-- KEYS [1] queue [2] tracks [3] played. ARGV: [1] id.
-- Reply: {'queued', score, record}, {'played', entry} or {'not_found'}.
local function metadata(keys, args)
  local id = args[1]
  local record = redis.call('HGET', keys[2], id)
  if record then
    return {'queued', redis.call('ZSCORE', keys[1], string.sub(record, 1, SEQ_WIDTH) .. id),
            record}
  end
  local entry = redis.call('HGET', keys[3], id)
  if entry then return {'played', entry} end
  return {'not_found'}
end

redis.register_function('add_${VERSION}', add)
redis.register_function('remove_${VERSION}', remove)
redis.register_function('vote_${VERSION}', vote)
redis.register_function('play_next_${VERSION}', play_next)
redis.register_function('clear_${VERSION}', clear)
redis.register_function{function_name = 'metadata_${VERSION}', callback = metadata,
                        flags = {'no-writes'}}

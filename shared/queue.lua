#!lua name=musicq_${VERSION}
-- The queue's Redis function library: each state change of a room is exactly one call of
-- one of these functions, atomic in Redis. Loaded once per Redis (shared/functions.py);
-- persisted and replicated with the data, so a restart, a failover or a new replica has it.
--
-- Every function takes the room's keys, all of them and always in this order (every key
-- a function touches comes in through KEYS, none is built here):
--   [1] queue    zset: score minus the votes, member <seq><id>: the play order
--   [2] tracks   hash: id -> <seq> US title US artist US duration US added_at
--   [3] now      string: the now-playing entry
--   [4] history  list: played entries, newest first
--   [5] played   hash: id -> its newest history entry (metadata lookups)
--   [6] ballots  hash: <seq><voter> -> 1 or -1, the per-voter ballots of queued tracks
--   [7] voted    zset, all scores 0: <seq><voter>, so one track's ballots are one range
--   [8] seq      counter: add sequence numbers
--   [9] version  counter: bumped by every change of the room
--  [10] idem     string, ${IDEMPOTENCY_TTL} s: this write's first reply, for its retries
-- and in ARGV: [1] the idempotency fingerprint ('' for none), [2] the room's events
-- channel, [3] the head size the caller reads after the call, then the operation's own.
--
-- A success replies {'ok', kind, version, length, <track>, <edge>}: <track> is id, score,
-- record for a queued track, the history entry for a play, nothing for a clear; <edge> is
-- the member, score and record of the track at the head's last place (${EVENT_HEAD}), ''
-- when the queue is shorter: with the track the change was about, the only one a single
-- change can bring into the head. The same fields, joined with RS, are the event published
-- on the room's channel, so a node keeps a room's head by applying changes to it
-- (shared/store/pubsub.py) and nothing here grows with the head. A refusal is a one-word
-- reply: {'duplicate'}, {'full'}, {'not_found'}, {'empty'}, {'idempotency_mismatch'}.

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
  local prior = redis.call('GET', keys[10])
  if not prior then return nil end
  if string.sub(prior, 1, #fingerprint + 1) ~= fingerprint .. '\n' then
    return {'idempotency_mismatch'}
  end
  return cjson.decode(string.sub(prior, #fingerprint + 2))
end

local function remember(keys, args, reply)
  if args[1] ~= '' then
    redis.call('SET', keys[10], args[1] .. '\n' .. cjson.encode(reply), 'EX', ${IDEMPOTENCY_TTL})
  end
  return reply
end

-- Every change ends here: a new version, the edge of the head, the event, the reply.
local function finish(keys, args, kind, a, b, c)
  local out = {'ok', kind, redis.call('INCR', keys[9]), redis.call('ZCARD', keys[1])}
  if a then out[5] = a end
  if b then out[6], out[7] = b, c end
  local edge = redis.call('ZRANGE', keys[1], EDGE, EDGE, 'WITHSCORES')
  if edge[1] then
    out[#out + 1], out[#out + 2] = edge[1], edge[2]
    out[#out + 1] = redis.call('HGET', keys[2], string.sub(edge[1], ID_AT))
  else
    out[#out + 1], out[#out + 2], out[#out + 3] = '', '', ''
  end
  redis.call('SPUBLISH', args[2], table.concat(out, RS))
  return remember(keys, args, out)
end

-- A queued track's ballots go with it (played or removed): its range in the index.
local function drop_ballots(keys, seq)
  local first, last = '[' .. seq, '[' .. seq .. '\255'
  local fields = redis.call('ZRANGEBYLEX', keys[7], first, last)
  if #fields > 0 then
    redis.call('HDEL', keys[6], unpack(fields))
    redis.call('ZREMRANGEBYLEX', keys[7], first, last)
  end
end

-- ARGV: [4] id [5] title [6] artist [7] duration [8] max queue length
local function add(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[4]
  if redis.call('HEXISTS', keys[2], id) == 1 then return remember(keys, args, {'duplicate'}) end
  if redis.call('ZCARD', keys[1]) >= tonumber(args[8]) then
    return remember(keys, args, {'full'})
  end
  local seq = string.format('%0' .. SEQ_WIDTH .. 'd', redis.call('INCR', keys[8]))
  local record = seq .. US .. args[5] .. US .. args[6] .. US .. args[7] .. US .. now_ms()
  redis.call('HSET', keys[2], id, record)
  redis.call('ZADD', keys[1], 0, seq .. id)
  return finish(keys, args, 'add', id, '0', record)
end

-- ARGV: [4] id
local function remove(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[4]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local seq = string.sub(record, 1, SEQ_WIDTH)
  local score = redis.call('ZSCORE', keys[1], seq .. id)
  redis.call('ZREM', keys[1], seq .. id)
  redis.call('HDEL', keys[2], id)
  drop_ballots(keys, seq)
  return finish(keys, args, 'remove', id, score, record)
end

-- ARGV: [4] id [5] direction, 1 or -1 [6] voter ('' for an anonymous vote)
local function vote(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id, direction, voter = args[4], tonumber(args[5]), args[6]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local member = string.sub(record, 1, SEQ_WIDTH) .. id
  local delta = direction
  if voter ~= '' then
    local ballot = string.sub(record, 1, SEQ_WIDTH) .. voter
    local prior = tonumber(redis.call('HGET', keys[6], ballot) or '0')
    if prior == direction then
      -- The voter's ballot already says this: nothing changes, so no new version.
      local v = tonumber(redis.call('GET', keys[9]) or '0')
      local out = {'ok', 'vote', v, redis.call('ZCARD', keys[1]), id,
                   redis.call('ZSCORE', keys[1], member), record, '', '', ''}
      return remember(keys, args, out)
    end
    redis.call('HSET', keys[6], ballot, direction)
    if prior == 0 then redis.call('ZADD', keys[7], 0, ballot) end
    delta = direction - prior
  end
  local score = redis.call('ZINCRBY', keys[1], -delta, member)
  return finish(keys, args, 'vote', id, score, record)
end

-- ARGV: [4] history limit
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
  redis.call('SET', keys[3], entry)
  redis.call('LPUSH', keys[4], entry)
  redis.call('HSET', keys[5], id, entry)
  local limit = tonumber(args[4])
  while redis.call('LLEN', keys[4]) > limit do
    local old = redis.call('RPOP', keys[4])
    local old_id = string.sub(old, 1, string.find(old, US, 1, true) - 1)
    if redis.call('HGET', keys[5], old_id) == old then redis.call('HDEL', keys[5], old_id) end
  end
  return finish(keys, args, 'play', entry)
end

local function clear(keys, args)
  local done = replay(keys, args)
  if done then return done end
  redis.call('UNLINK', keys[1], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7])
  return finish(keys, args, 'clear')
end

-- ARGV: [1] id. Reply: {'queued', score, record}, {'played', entry} or {'not_found'}.
local function metadata(keys, args)
  local id = args[1]
  local record = redis.call('HGET', keys[2], id)
  if record then
    return {'queued', redis.call('ZSCORE', keys[1], string.sub(record, 1, SEQ_WIDTH) .. id),
            record}
  end
  local entry = redis.call('HGET', keys[5], id)
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

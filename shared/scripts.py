"""The Lua scripts: each state change of a room is exactly one of these, run atomically.

Every write script has the same header (``_WRITE``): the room's keys in KEYS, then in
ARGV the idempotency fingerprint, the events channel and the head size the caller will
read, then the operation's own arguments from ARGV[4]. A write ends in ``finish``: it bumps the room
version, publishes the change and, when the caller sent an idempotency key, stores the
reply so that a retry gets the very same answer and changes nothing.

Replies are flat arrays. A success is
    {'ok', kind, version, length, <track>, <edge>}
where <track> is ``id, score, record`` for a queued track, one history entry for a play,
nothing for a clear, and <edge> (when the caller reads a head) is the member and record of
the track now at the head's last place: with the track the write was about, the only one
a single change can bring into the head, so nodes seldom need to ask for a record. The
head of the queue that callers get with a write is read after the script in the same
MULTI/EXEC (``shared.queue``): a native ZRANGE costs Redis a quarter of what converting
25 tracks into and out of Lua does. A refusal is a one-word
array: {'duplicate'}, {'full'}, {'not_found'}, {'empty'}. Events go out only when the room
has subscribers: the reply plus the first EVENT_HEAD tracks as id, score, record triples,
all joined with the record separator (\x1e).
The queue member of a track is its 12-digit add sequence number followed by its id; its
score is minus its votes, so ZRANGE order is: most votes, then first added.
"""

from __future__ import annotations

import hashlib
from string import Template

from .keys import RoomKeys
from .model import SEQ_WIDTH
from .validation import IDEMPOTENCY_TTL

# Events carry at most this many tracks of the head, whatever a write asked for.
EVENT_HEAD = 25
# KEYS of every write: the room's keys, then its idempotency key.
WRITE_KEYS = len(RoomKeys._fields) + 1
CONSTANTS = {"EVENT_HEAD": EVENT_HEAD, "SEQ_WIDTH": SEQ_WIDTH, "ID_AT": SEQ_WIDTH + 1,
             "IDEMPOTENCY_TTL": IDEMPOTENCY_TTL, "WRITE_KEYS": WRITE_KEYS}


class Script:
    __slots__ = ("source", "sha")

    def __init__(self, source: str):
        self.source = Template(source).substitute(CONSTANTS)  # the Python constants above
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.sha[:8]})"


_HEAD = r"""
-- The tracks at ranks start..stop of the queue as one string: id, score, record triples
-- joined with RS ('' for none).
local function head_of(queue, tracks, start, stop)
  local members = redis.call('ZRANGE', queue, start, stop, 'WITHSCORES')
  if #members == 0 then return '' end
  local ids = {}
  for i = 1, #members, 2 do ids[#ids + 1] = string.sub(members[i], ${ID_AT}) end
  local records = redis.call('HMGET', tracks, unpack(ids))
  local parts = {}
  for i = 1, #ids do
    parts[3 * i - 2] = ids[i]
    parts[3 * i - 1] = members[2 * i]
    parts[3 * i] = records[i]
  end
  return table.concat(parts, '\30')
end
"""

_READ = "#!lua flags=no-writes"  # must be the first line of a read-only script

_WRITE = r"""
-- KEYS (${WRITE_KEYS}): [1] queue [2] tracks [3] now [4] history [5] played [6] balloted
--       [7] seq [8] version [9] ballots key prefix [10] idempotency key
-- ARGV: [1] idempotency fingerprint ('' for none) [2] events channel [3] head size
--       [4...] the operation's arguments
local queue, tracks, now, history, played = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local balloted, seqkey, version, ballots, idem = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local fingerprint, channel, head_size = ARGV[1], ARGV[2], tonumber(ARGV[3])
local US, RS = '\31', '\30'
""" + _HEAD + r"""
if fingerprint ~= '' then
  local prior = redis.call('GET', idem)
  if prior then
    if string.sub(prior, 1, #fingerprint + 1) ~= fingerprint .. '\n' then
      return {'idempotency_mismatch'}
    end
    return cjson.decode(string.sub(prior, #fingerprint + 2))
  end
end

local function remember(reply)
  if fingerprint ~= '' then
    redis.call('SET', idem, fingerprint .. '\n' .. cjson.encode(reply), 'EX', ${IDEMPOTENCY_TTL})
  end
  return reply
end

local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

local function reply(kind, v, track)
  local out = {'ok', kind, v, redis.call('ZCARD', queue)}
  for i = 1, #track do out[#out + 1] = track[i] end
  return out
end

-- A success goes back with the member and record at the head's last place.
local function respond(out)
  if head_size > 0 then
    local edge = redis.call('ZRANGE', queue, head_size - 1, head_size - 1)[1]
    out[#out + 1] = edge or ''
    out[#out + 1] = edge and redis.call('HGET', tracks, string.sub(edge, ${ID_AT})) or ''
  end
  return remember(out)
end

-- Every change ends here: a new version, an event for the room's live listeners (if it
-- has any), the reply.
local function finish(kind, track)
  local out = reply(kind, redis.call('INCR', version), track)
  if redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
    redis.call('PUBLISH', channel, table.concat(out, RS) .. RS
      .. head_of(queue, tracks, 0, ${EVENT_HEAD} - 1))
  end
  return respond(out)
end

-- A queued track's per-voter ballots live under the ballots prefix plus its add seq;
-- the prefix carries the room's hash tag, so the key stays in this room's slot.
local function drop_ballots(seq)
  if redis.call('SREM', balloted, seq) == 1 then
    redis.call('UNLINK', ballots .. seq)
  end
end
"""

ADD = Script(_WRITE + r"""
-- ARGV: [4] id [5] title [6] artist [7] duration [8] max queue length
local id = ARGV[4]
if redis.call('HEXISTS', tracks, id) == 1 then return remember({'duplicate'}) end
if redis.call('ZCARD', queue) >= tonumber(ARGV[8]) then return remember({'full'}) end
local seq = string.format('%0${SEQ_WIDTH}d', redis.call('INCR', seqkey))
local record = seq .. US .. ARGV[5] .. US .. ARGV[6] .. US .. ARGV[7] .. US .. now_ms()
redis.call('HSET', tracks, id, record)
redis.call('ZADD', queue, 0, seq .. id)
return finish('add', {id, '0', record})
""")

REMOVE = Script(_WRITE + r"""
-- ARGV: [4] id
local id = ARGV[4]
local record = redis.call('HGET', tracks, id)
if not record then return remember({'not_found'}) end
local seq = string.sub(record, 1, ${SEQ_WIDTH})
local score = redis.call('ZSCORE', queue, seq .. id)
redis.call('ZREM', queue, seq .. id)
redis.call('HDEL', tracks, id)
drop_ballots(seq)
return finish('remove', {id, score, record})
""")

VOTE = Script(_WRITE + r"""
-- ARGV: [4] id [5] direction, 1 or -1 [6] voter ('' for an anonymous vote)
local id, direction, voter = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local record = redis.call('HGET', tracks, id)
if not record then return remember({'not_found'}) end
local seq = string.sub(record, 1, ${SEQ_WIDTH})
local delta = direction
if voter ~= '' then
  local box = ballots .. seq
  local prior = tonumber(redis.call('HGET', box, voter) or '0')
  if prior == direction then
    -- The voter's ballot already says this: nothing changes, so no new version.
    local v = tonumber(redis.call('GET', version) or '0')
    return respond(reply('vote', v, {id, redis.call('ZSCORE', queue, seq .. id), record}))
  end
  redis.call('HSET', box, voter, direction)
  redis.call('SADD', balloted, seq)
  delta = direction - prior
end
local score = redis.call('ZINCRBY', queue, -delta, seq .. id)
return finish('vote', {id, score, record})
""")

PLAY_NEXT = Script(_WRITE + r"""
-- ARGV: [4] history limit
local popped = redis.call('ZPOPMIN', queue)
if #popped == 0 then return remember({'empty'}) end
local seq, id = string.sub(popped[1], 1, ${SEQ_WIDTH}), string.sub(popped[1], ${ID_AT})
local record = redis.call('HGET', tracks, id)
redis.call('HDEL', tracks, id)
drop_ballots(seq)
-- id, then the record without its seq (title .. added_at), then votes and played_at
local entry = id .. string.sub(record, ${ID_AT}) .. US .. string.format('%d', -tonumber(popped[2]))
  .. US .. now_ms()
redis.call('SET', now, entry)
redis.call('LPUSH', history, entry)
redis.call('HSET', played, id, entry)
local limit = tonumber(ARGV[4])
while redis.call('LLEN', history) > limit do
  local old = redis.call('RPOP', history)
  local old_id = string.sub(old, 1, string.find(old, US, 1, true) - 1)
  if redis.call('HGET', played, old_id) == old then redis.call('HDEL', played, old_id) end
end
return finish('play', {entry})
""")

CLEAR = Script(_WRITE + r"""
for _, seq in ipairs(redis.call('SMEMBERS', balloted)) do
  redis.call('UNLINK', ballots .. seq)
end
redis.call('UNLINK', queue, tracks, now, history, played, balloted)
return finish('clear', {})
""")

METADATA = Script(_READ + r"""
-- KEYS: [1] queue [2] tracks [3] played
-- ARGV: [1] id
-- Reply: {'queued', score, record}, {'played', entry} or {'not_found'}.
local id = ARGV[1]
local record = redis.call('HGET', KEYS[2], id)
if record then
  local member = string.sub(record, 1, ${SEQ_WIDTH}) .. id
  return {'queued', redis.call('ZSCORE', KEYS[1], member), record}
end
local entry = redis.call('HGET', KEYS[3], id)
if entry then return {'played', entry} end
return {'not_found'}
""")

"""The shared state of N replicas in a Redis-protocol store (Valkey or Redis).

Keys, all under ``mm:{<namespace>/<monitor>}:<fingerprint>:`` (the braces are a Redis Cluster
hash tag: every key of a monitor lives in one slot, so the Lua scripts below run there too;
the fingerprint of the reference profile keeps the parts of another reference or config
apart, since their bins cannot be merged):

- ``slot:<n>``: hash, replica id -> that replica's part of time bucket ``n`` (a packed
  :class:`~monitor_worker.window.Bucket`). Each flush overwrites a replica's cumulative part,
  so a flush is idempotent; the key expires when the bucket leaves the window.
- ``pending:<n>``: hash, prediction id -> (time, prediction, probabilities) for the slice
  ``n`` of ``labels.ttl / 24``; a label takes the newest entry of its id from every slice, in
  one script, so two replicas never both take it.
- ``halves`` / ``halves:t``: hash and sorted set of unpaired KServe halves by ``ce-id``.

Writes are batched: the ingest thread hands a :class:`FlushWork` to the store thread every
flush interval; a failed flush is handed back and retried, so what was accepted is kept while
the store is away (bounded by ``store.maxBuffered`` predictions and halves)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import orjson
import redis

from ..snapshot import unpack
from .work import FlushResult, FlushWork, StoreUnavailable

log = logging.getLogger(__name__)

StoreErrors = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
_AUTH_ERRORS = (redis.AuthenticationError, redis.AuthenticationWrongNumberOfArgsError)

#: KEYS: the pending slices, newest first; ARGV: ids. For each id the newest entry found,
#: deleted from every slice (false when none).
_TAKE = """
local out = {}
for i, id in ipairs(ARGV) do
  local found = false
  for _, key in ipairs(KEYS) do
    local v = redis.call('HGET', key, id)
    if v then
      if not found then found = v end
      redis.call('HDEL', key, id)
    end
  end
  out[i] = found
end
return out
"""

#: KEYS[1]: a pending slice; ARGV: ids concatenated, their byte lengths (uint32 LE), rows
#: concatenated, row width in bytes, expiry (Unix time). One HSET per id, done in the store:
#: the worker sends three strings per slice instead of two arguments per prediction.
_PUT = """
local ids, lens, rows, w = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local n = #lens / 4
local pos, args = 1, {}
for i = 0, n - 1 do
  local len = struct.unpack('<I4', lens, i * 4 + 1)
  args[#args + 1] = string.sub(ids, pos, pos + len - 1)
  args[#args + 1] = string.sub(rows, i * w + 1, (i + 1) * w)
  pos = pos + len
  if #args >= 2000 or i == n - 1 then  -- one HSET per 1000 ids (unpack's stack is bounded)
    redis.call('HSET', KEYS[1], unpack(args))
    args = {}
  end
end
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return n
"""

#: KEYS: the pending slices, oldest first; ARGV[1]: slices older than this index are past
#: the TTL; ARGV[2]: the most entries kept. Deletes whole slices; returns how many entries went.
_BOUND = """
local cutoff = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local sizes, total, dropped = {}, 0, 0
for i, key in ipairs(KEYS) do
  sizes[i] = redis.call('HLEN', key)
  total = total + sizes[i]
end
for i, key in ipairs(KEYS) do
  local index = tonumber(string.match(key, ':pending:(%-?%d+)$'))
  if sizes[i] > 0 and (index < cutoff or total > cap) then
    redis.call('DEL', key)
    total = total - sizes[i]
    dropped = dropped + sizes[i]
  end
end
return {dropped, total}
"""

#: KEYS: halves hash, halves time index; ARGV: id, kind ("q"/"r"), blob, now. Returns the
#: other half's blob when it is waiting (it leaves the store), else stores this one.
_PAIR = """
local other = redis.call('HGET', KEYS[1], ARGV[1])
if other and string.sub(other, 1, 1) ~= ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return other
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return false
"""

#: KEYS: halves hash, time index; ARGV: cutoff time, most halves kept. Removes halves older
#: than the cutoff (and the oldest beyond the cap); returns the request halves among them.
_EXPIRE_HALVES = """
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - #old - tonumber(ARGV[2])
if extra > 0 then
  local more = redis.call('ZRANGE', KEYS[2], #old, #old + extra - 1)
  for _, id in ipairs(more) do table.insert(old, id) end
end
local out = {}
for _, id in ipairs(old) do
  local v = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if v and string.sub(v, 1, 1) == 'q' then table.insert(out, v) end
end
return out
"""


_PUT_CHUNK = 20_000


def describe(url: str) -> str:
    """The store's address without credentials, for messages and logs."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class RedisStore:
    """One replica's view of the shared store. Thread-safe for one writer (the store thread)
    and readers (the evaluator; label takes from the ingest thread): redis-py's connection
    pool hands each thread its own connection."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None,
        namespace: str,
        monitor: str,
        fingerprint: str,
        replica: str,
        window_seconds: float,
        n_buckets: int,
        label_ttl: float,
        max_pending: int,
        half_ttl: float,
        max_halves: int,
        proba_width: int,
        timeout: float = 2.0,
    ) -> None:
        self.url = describe(url)
        self.client = redis.Redis.from_url(
            url,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=10,
        )
        self.prefix = f"mm:{{{namespace}/{monitor}}}:{fingerprint}:"
        self.replica = replica
        self.bucket_width = window_seconds / n_buckets
        self.window_seconds = window_seconds
        self.label_ttl = label_ttl
        self.slice_width = max(label_ttl / 24, 1.0)
        self.max_pending = max_pending
        self.half_ttl = half_ttl
        self.max_halves = max_halves
        self.row_width = 2 + max(proba_width, 1)
        self.reachable = False
        self.last_error: str | None = None
        self.last_flush: float | None = None
        self._put = self.client.register_script(_PUT)
        self._take = self.client.register_script(_TAKE)
        self._bound = self.client.register_script(_BOUND)
        self._pair = self.client.register_script(_PAIR)
        self._expire_halves = self.client.register_script(_EXPIRE_HALVES)

    # -- health ----------------------------------------------------------------------------

    def _failed(self, e: Exception) -> StoreUnavailable:
        self.reachable = False
        self.last_error = f"store {self.url} unreachable: {type(e).__name__}: {e}"
        return StoreUnavailable(self.last_error)

    def check(self) -> None:
        """Raise StoreUnavailable unless the store answers (PING)."""
        try:
            self.client.ping()
        except _AUTH_ERRORS as e:
            self.reachable = False
            self.last_error = f"store {self.url} refused the password: {e}"
            raise StoreUnavailable(self.last_error) from None
        except (*StoreErrors, redis.ResponseError) as e:
            raise self._failed(e) from None
        self.reachable, self.last_error = True, None

    # -- keys ------------------------------------------------------------------------------

    def _slot_key(self, slot: int) -> str:
        return f"{self.prefix}slot:{slot}"

    def _pending_key(self, index: int) -> str:
        return f"{self.prefix}pending:{index}"

    def _pending_keys(self, now: float) -> list[str]:
        """Every slice that can hold a live prediction, oldest first (one extra on each side
        for clocks that differ between replicas)."""
        newest = math.floor(now / self.slice_width) + 1
        oldest = math.floor((now - self.label_ttl) / self.slice_width) - 1
        return [self._pending_key(i) for i in range(oldest, newest + 1)]

    # -- flush (store thread) ---------------------------------------------------------------

    def flush(self, work: FlushWork, now: float | None = None) -> FlushResult:
        """Write ``work``; raises StoreUnavailable (then hand the same work back next time)."""
        now = time.time() if now is None else now
        result = FlushResult(at=now)
        try:
            pipe = self.client.pipeline(transaction=False)
            for slot, blob in work.parts.items():
                key = self._slot_key(slot)
                pipe.hset(key, self.replica, blob)
                # Gone once the bucket has left every replica's window (plus a margin).
                end = (slot + 1) * self.bucket_width + self.window_seconds + 60
                pipe.expireat(key, int(end) + 1)
            if work.pending_ids:
                self._write_pending(pipe, work, now)
            if work.totals is not None:
                pipe.hset(f"{self.prefix}totals", self.replica, orjson.dumps(work.totals))
                pipe.expire(f"{self.prefix}totals", int(self.window_seconds) + 3600)
            pipe.execute()
            for ce_id, kind, blob, at in work.halves:
                other = self._pair(
                    keys=[f"{self.prefix}halves", f"{self.prefix}halves:t"],
                    args=[ce_id, kind, blob, at],
                )
                if other is not None:
                    mine = kind.encode() + blob
                    request, response = (mine, other) if kind == "q" else (other, mine)
                    result.pairs.append((ce_id, bytes(request[1:]), bytes(response[1:])))
            expired = self._expire_halves(
                keys=[f"{self.prefix}halves", f"{self.prefix}halves:t"],
                args=[now - self.half_ttl, self.max_halves],
            )
            result.expired_requests = [v[1:] for v in expired]
            keys = self._pending_keys(now)
            cutoff = math.floor((now - self.label_ttl) / self.slice_width)
            dropped, total = self._bound(keys=keys, args=[cutoff, self.max_pending])
            result.pending_expired, result.pending_total = int(dropped), int(total)
        except StoreErrors as e:
            raise self._failed(e) from None
        self.reachable, self.last_error, self.last_flush = True, None, now
        return result

    def _write_pending(self, pipe: Any, work: FlushWork, now: float) -> None:
        rows = np.concatenate(work.pending_rows)
        ids = work.pending_ids
        slices = np.floor(rows[:, 0] / self.slice_width).astype(np.int64)
        for index in np.unique(slices).tolist():
            mine = np.flatnonzero(slices == index)
            if mine.size != len(ids):  # several slices in one flush (rare): select
                ids_here = [ids[i] for i in mine.tolist()]
                rows_here = rows[mine]
            else:
                ids_here, rows_here = ids, rows
            expiry = int((index + 1) * self.slice_width + 2 * self.label_ttl) + 1
            key = self._pending_key(int(index))
            for start in range(0, len(ids_here), _PUT_CHUNK):  # keeps each script short
                chunk = ids_here[start : start + _PUT_CHUNK]
                blob = "".join(chunk).encode()
                lengths = np.fromiter(map(len, chunk), np.uint32, len(chunk))
                if len(blob) != int(lengths.sum()):  # non-ASCII ids: lengths in bytes
                    lengths = np.fromiter((len(i.encode()) for i in chunk), np.uint32, len(chunk))
                body = np.ascontiguousarray(rows_here[start : start + _PUT_CHUNK]).tobytes()
                self._put(
                    keys=[key],
                    args=[blob, lengths.astype("<u4").tobytes(), body, 8 * self.row_width, expiry],
                    client=pipe,
                )

    def pending_row(
        self, times: np.ndarray, predictions: np.ndarray, probas: np.ndarray | None
    ) -> np.ndarray:
        """Rows of (time, prediction, probabilities...) as the store keeps them."""
        n = len(predictions)
        rows = np.full((n, self.row_width), np.nan)
        rows[:, 0] = times
        rows[:, 1] = predictions
        if probas is not None:
            rows[:, 2 : 2 + probas.reshape(n, -1).shape[1]] = probas.reshape(n, -1)
        return rows

    # -- reads --------------------------------------------------------------------------------

    def take_pending(
        self, ids: list[str], now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Remove and return the waiting predictions of ``ids``: (indices into ``ids`` that
        matched, predictions, probabilities, how many matched only after their TTL)."""
        keys = list(reversed(self._pending_keys(now)))
        try:
            found = self._take(keys=keys, args=ids)
        except StoreErrors as e:
            raise self._failed(e) from None
        hit = [i for i, v in enumerate(found) if v]
        if not hit:
            empty = np.empty(0)
            return np.empty(0, dtype=np.int64), empty, np.empty((0, self.row_width - 2)), 0
        rows = np.frombuffer(b"".join(found[i] for i in hit), dtype=np.float64)
        rows = rows.reshape(len(hit), self.row_width)
        fresh = rows[:, 0] >= now - self.label_ttl
        idx = np.asarray(hit, dtype=np.int64)[fresh]
        return idx, rows[fresh, 1], rows[fresh, 2:], int((~fresh).sum())

    def other_parts(self, slots: range) -> dict[int, list[Any]]:
        """The parts of every other replica for ``slots`` (unpacked documents)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for slot in slots:
                pipe.hgetall(self._slot_key(slot))
            answers = pipe.execute()
        except StoreErrors as e:
            raise self._failed(e) from None
        out: dict[int, list[Any]] = {}
        for slot, parts in zip(slots, answers, strict=True):
            for replica, blob in parts.items():
                if _text(replica) != self.replica:
                    out.setdefault(slot, []).append(unpack(blob))
        return out

    def replicas(self) -> dict[str, dict[str, Any]]:
        """The totals each replica flushed last, by replica id."""
        try:
            raw = self.client.hgetall(f"{self.prefix}totals")
        except StoreErrors as e:
            raise self._failed(e) from None
        return {_text(k): orjson.loads(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

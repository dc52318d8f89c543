package throttle

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared applies the rules of a [Throttle] with the counters kept in Redis
// (or Valkey), so that every server process counts the same failures: an
// attacker spreading guesses over the nodes behind a load balancer meets
// the same delays and lock as one talking to a single node. Each operation
// is one Lua script, atomic in Redis, so racing nodes cannot skip a delay
// either. While Redis cannot be reached, the Rules throttle's own in-memory
// counters stand in, so throttling degrades to per-node rather than off.
type Shared struct {
	// Rules holds the limits (Window, FreeAttempts, LockAfter, LockFor,
	// MaxDelay) and the clock, and counts in memory while Redis is down.
	Rules *Throttle
	// Client talks to Redis.
	Client redis.UniversalClient
	// Prefix starts every Redis key, e.g. "gatehouse:throttle:acct:".
	Prefix string
	// Timeout bounds one Redis call; 0 means 250ms.
	Timeout time.Duration
	// OnError, when set, is told of each Redis failure (for logs and metrics).
	OnError func(error)
}

var _ Limiter = (*Shared)(nil)

// The scripts keep per key a hash of f (failures), l (last failure), nb
// (not before: the reserved slot) and lu (locked until), times in
// milliseconds of the Rules clock. backoff mirrors Throttle.backoff.
const sharedLib = `
local function backoff(f, free, first, maxd)
  if f < free or maxd <= 0 then return 0 end
  local d = math.min(first, maxd)
  local i = free
  while i < f and d < maxd do d = d * 2; i = i + 1 end
  return math.min(d, maxd)
end
local now, window, free, first, maxd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'f', 'l', 'nb', 'lu')
local f, l, nb, lu = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
local expired = v[1] == false or (now >= lu and now - l >= window)
`

var checkScript = redis.NewScript(sharedLib + `
if expired then
  if v[1] ~= false then redis.call('DEL', KEYS[1]) end
  return {0, 0}
end
if now < lu then return {0, lu - now} end
if f < free then return {0, 0} end
if now < nb then return {nb - now, 0} end
redis.call('HSET', KEYS[1], 'nb', now + backoff(f, free, first, maxd))
return {0, 0}
`)

var failScript = redis.NewScript(sharedLib + `
local lockAfter, lockFor = tonumber(ARGV[6]), tonumber(ARGV[7])
if expired then f, lu = 0, 0 end
if f < 1073741824 then f = f + 1 end
nb = now + backoff(f, free, first, maxd)
if lockAfter > 0 and f >= lockAfter then lu = now + lockFor end
redis.call('HSET', KEYS[1], 'f', f, 'l', now, 'nb', nb, 'lu', lu)
redis.call('PEXPIRE', KEYS[1], window + lockFor + 60000)
return f
`)

func (s *Shared) ctx() (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = 250 * time.Millisecond
	}
	return context.WithTimeout(context.Background(), d)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (s *Shared) args() []any {
	r := s.Rules
	return []any{r.now().UnixMilli(), ms(r.Window), r.FreeAttempts, ms(min(firstDelay, max(r.MaxDelay, 0))), ms(r.MaxDelay)}
}

func (s *Shared) failed(err error) {
	if s.OnError != nil {
		s.OnError(err)
	}
}

// Check is [Throttle.Check] over the shared counters.
func (s *Shared) Check(key string) (delay, locked time.Duration) {
	ctx, cancel := s.ctx()
	defer cancel()
	res, err := checkScript.Run(ctx, s.Client, []string{s.Prefix + key}, s.args()...).Int64Slice()
	if err != nil || len(res) != 2 {
		s.failed(err)
		return s.Rules.Check(key)
	}
	return time.Duration(res[0]) * time.Millisecond, time.Duration(res[1]) * time.Millisecond
}

// Fail is [Throttle.Fail] over the shared counters.
func (s *Shared) Fail(key string) {
	ctx, cancel := s.ctx()
	defer cancel()
	args := append(s.args(), s.Rules.LockAfter, ms(s.Rules.LockFor))
	if err := failScript.Run(ctx, s.Client, []string{s.Prefix + key}, args...).Err(); err != nil {
		s.failed(err)
		s.Rules.Fail(key)
	}
}

// Reset is [Throttle.Reset] over the shared counters (and the stand-in
// counters, which may hold failures from an outage).
func (s *Shared) Reset(key string) {
	s.Rules.Reset(key)
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.Client.Del(ctx, s.Prefix+key).Err(); err != nil {
		s.failed(err)
	}
}

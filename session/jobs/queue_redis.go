package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/redis/go-redis/v9"
)

// RedisQueueConfig configures a RedisQueue.
type RedisQueueConfig struct {
	// Client reaches the Redis the replicas share. Required.
	Client redis.UniversalClient
	// Stream is the key of the jobs' stream; retries wait in the sorted set Stream+":delayed"
	// and dead letters go to the stream Stream+":dead". Default "dartmouth:jobs".
	Stream string
	// Group is the consumer group every replica reads through. Default "workers".
	Group string
	// Consumer names this process in the group. Default host:pid and a random suffix.
	Consumer string
	// Workers run jobs concurrently, per Work call. Default 4.
	Workers int
	// MaxAttempts is the default of Job.MaxAttempts. Default 5.
	MaxAttempts int
	// Backoff is the wait after failed attempt n. Default ExponentialBackoff(1s, 5m).
	Backoff func(attempt int) time.Duration
	// HandlerTimeout ends a handler's context. Default 1m.
	HandlerTimeout time.Duration
	// ClaimIdle is how long a job may sit delivered but unacknowledged (its worker died or
	// hung) before another worker claims it. Default 5m; at least HandlerTimeout.
	ClaimIdle time.Duration
	// Block is how long one read waits for a job; shutdown waits at most this. Default 2s.
	Block time.Duration
	// PollInterval paces the moving of due retries into the stream, the claiming of stuck
	// jobs and the reconnection attempts while Redis is down. Default 1s.
	PollInterval time.Duration
	// MaxLen caps the stream and the dead-letter stream, approximately. Default 100000.
	MaxLen int64
	// Clock times retries and stamps jobs. Default session.SystemClock.
	Clock session.Clock
	// Logger receives failures and outages. Default slog.Default().
	Logger *slog.Logger
}

// RedisQueue is the Queue replicas share through a Redis stream: XADD to enqueue, a consumer
// group (XREADGROUP) to spread jobs over every replica's workers, XACK when done, XAUTOCLAIM
// to take over the jobs of a worker that died. A failed job waits out its backoff in a sorted
// set and is added back to the stream when due; a job out of attempts goes to the dead-letter
// stream. Delivery is at least once.
//
// When Redis goes away, Enqueue fails (the caller decides what to do) and the workers keep
// retrying; when it comes back, empty after a restart, they recreate the group and carry on.
type RedisQueue struct {
	cfg                 RedisQueueConfig
	delayedKey, deadKey string
	down                atomic.Bool // Redis was unreachable at the last try
}

var _ Queue = (*RedisQueue)(nil)

// NewRedisQueue checks the config and fills defaults.
func NewRedisQueue(cfg RedisQueueConfig) (*RedisQueue, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis queue: a client is required")
	}
	if cfg.Stream == "" {
		cfg.Stream = "dartmouth:jobs"
	}
	if cfg.Group == "" {
		cfg.Group = "workers"
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = host + ":" + strconv.Itoa(os.Getpid()) + ":" + session.NewID("c")[2:10]
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = defaultBackoff
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = defaultHandlerTimeout
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = 5 * time.Minute
	}
	if cfg.ClaimIdle < cfg.HandlerTimeout {
		return nil, fmt.Errorf("redis queue: claim-idle %v is shorter than the handler timeout %v: running jobs would be claimed twice", cfg.ClaimIdle, cfg.HandlerTimeout)
	}
	if cfg.Block <= 0 {
		cfg.Block = 2 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = 100000
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &RedisQueue{cfg: cfg, delayedKey: cfg.Stream + ":delayed", deadKey: cfg.Stream + ":dead"}, nil
}

// Enqueue implements Queue.
func (q *RedisQueue) Enqueue(ctx context.Context, j Job) error {
	if err := prepare(&j, q.cfg.Clock.Now()); err != nil {
		return err
	}
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", j.Type, err)
	}
	if err := q.cfg.Client.XAdd(ctx, &redis.XAddArgs{Stream: q.cfg.Stream, MaxLen: q.cfg.MaxLen, Approx: true, Values: []any{"job", raw}}).Err(); err != nil {
		return fmt.Errorf("enqueue %s: redis: %w", j.Type, err)
	}
	return nil
}

// claimedJob is a stuck message taken over from another consumer, with its delivery count.
type claimedJob struct {
	msg        redis.XMessage
	deliveries int
}

// Work implements Queue.
func (q *RedisQueue) Work(ctx context.Context, handlers map[string]Handler) error {
	_ = q.ensureGroup(ctx) // if Redis is down, the workers create it once it answers
	claimed := make(chan claimedJob)
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.work(ctx, handlers, claimed)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.maintain(ctx, claimed)
	}()
	wg.Wait()
	return ctx.Err()
}

func (q *RedisQueue) work(ctx context.Context, handlers map[string]Handler, claimed <-chan claimedJob) {
	for ctx.Err() == nil {
		select {
		case c := <-claimed:
			q.handle(ctx, handlers, c.msg, c.deliveries)
			continue
		default:
		}
		streams, err := q.cfg.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: q.cfg.Group, Consumer: q.cfg.Consumer, Streams: []string{q.cfg.Stream, ">"}, Count: 1, Block: q.cfg.Block,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			q.up()
			continue // nothing within Block
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && isNoGroup(err):
			// Redis restarted empty, or someone deleted the stream: make the group again.
			if gerr := q.ensureGroup(ctx); gerr != nil {
				q.outage(ctx, gerr)
				sleep(ctx, q.cfg.PollInterval)
			}
			continue
		case err != nil:
			q.outage(ctx, err)
			sleep(ctx, q.cfg.PollInterval)
			continue
		}
		q.up()
		for _, s := range streams {
			for _, msg := range s.Messages {
				q.handle(ctx, handlers, msg, 1)
			}
		}
	}
}

// maintain moves due retries into the stream and claims stuck jobs, every PollInterval.
func (q *RedisQueue) maintain(ctx context.Context, claimed chan<- claimedJob) {
	ticker := time.NewTicker(q.cfg.PollInterval)
	defer ticker.Stop()
	for {
		if err := q.moveDue(ctx); err != nil && ctx.Err() == nil {
			q.outage(ctx, err)
		}
		q.claimStuck(ctx, claimed)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// moveScript adds the due retries (score <= now) back to the stream, each exactly once even
// when several replicas move at the same time.
var moveScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  if redis.call('ZREM', KEYS[1], job) == 1 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'job', job)
  end
end
return #due`)

func (q *RedisQueue) moveDue(ctx context.Context) error {
	for {
		n, err := moveScript.Run(ctx, q.cfg.Client, []string{q.delayedKey, q.cfg.Stream}, q.cfg.Clock.Now().UnixMilli(), 100, q.cfg.MaxLen).Int()
		if err != nil {
			return fmt.Errorf("move due retries: %w", err)
		}
		if n < 100 {
			return nil
		}
	}
}

func (q *RedisQueue) claimStuck(ctx context.Context, claimed chan<- claimedJob) {
	msgs, _, err := q.cfg.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: q.cfg.Stream, Group: q.cfg.Group, Consumer: q.cfg.Consumer, MinIdle: q.cfg.ClaimIdle, Start: "0-0", Count: 10,
	}).Result()
	if err != nil {
		return // NOGROUP or an outage: the workers report and repair those
	}
	for _, msg := range msgs {
		if len(msg.Values) == 0 {
			continue // deleted while pending
		}
		deliveries := 1
		pending, err := q.cfg.Client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: q.cfg.Stream, Group: q.cfg.Group, Start: msg.ID, End: msg.ID, Count: 1}).Result()
		if err == nil && len(pending) == 1 {
			deliveries = int(pending[0].RetryCount) // counts this claim too
		}
		q.cfg.Logger.WarnContext(ctx, "jobs: took over a job stuck on another worker", "message", msg.ID, "deliveries", deliveries)
		select {
		case claimed <- claimedJob{msg: msg, deliveries: deliveries}:
		case <-ctx.Done():
			return
		}
	}
}

// handle runs one delivered message and settles it: acknowledged and deleted when done, else
// rescheduled or dead-lettered in the same MULTI. If settling fails (Redis went away), the
// message stays pending and is claimed again after ClaimIdle.
func (q *RedisQueue) handle(ctx context.Context, handlers map[string]Handler, msg redis.XMessage, deliveries int) {
	raw, _ := msg.Values["job"].(string)
	var j Job
	var err error
	if jerr := json.Unmarshal([]byte(raw), &j); jerr != nil {
		j = Job{ID: msg.ID, Type: "?", Payload: json.RawMessage(strconv.Quote(raw))}
		err = fmt.Errorf("%w: unreadable job: %v", errNoHandler, jerr)
	} else {
		j.Attempt += deliveries
		err = runHandler(ctx, handlers, j, q.cfg.HandlerTimeout)
	}
	// Settled even when shutting down: the work is done (or failed) either way.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	log := q.cfg.Logger.With("job", j.ID, "type", j.Type, "attempt", j.Attempt)
	maxAttempts := j.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = q.cfg.MaxAttempts
	}
	_, serr := q.cfg.Client.TxPipelined(sctx, func(p redis.Pipeliner) error {
		switch {
		case err == nil:
		case errors.Is(err, errNoHandler) || j.Attempt >= maxAttempts:
			log.ErrorContext(ctx, "jobs: job failed for good: dead letter", "err", err)
			j.LastError = err.Error()
			dead, _ := json.Marshal(DeadLetter{Job: j, Err: err.Error(), At: q.cfg.Clock.Now()})
			p.XAdd(sctx, &redis.XAddArgs{Stream: q.deadKey, MaxLen: q.cfg.MaxLen, Approx: true, Values: []any{"dead", dead}})
		default:
			wait := q.cfg.Backoff(j.Attempt)
			log.WarnContext(ctx, "jobs: job failed; retrying", "err", err, "in", wait)
			j.LastError = err.Error()
			again, _ := json.Marshal(j)
			p.ZAdd(sctx, q.delayedKey, redis.Z{Score: float64(q.cfg.Clock.Now().Add(wait).UnixMilli()), Member: again})
		}
		p.XAck(sctx, q.cfg.Stream, q.cfg.Group, msg.ID)
		p.XDel(sctx, q.cfg.Stream, msg.ID)
		return nil
	})
	if serr != nil {
		log.WarnContext(ctx, "jobs: could not settle a job; it will be delivered again", "err", serr)
	}
}

// DeadLetters returns up to limit jobs of the dead-letter stream, oldest first.
func (q *RedisQueue) DeadLetters(ctx context.Context, limit int64) ([]DeadLetter, error) {
	msgs, err := q.cfg.Client.XRangeN(ctx, q.deadKey, "-", "+", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		var d DeadLetter
		raw, _ := m.Values["dead"].(string)
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return nil, fmt.Errorf("dead letter %s: %w", m.ID, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// ensureGroup creates the consumer group (and the stream), reading from the stream's start so
// jobs enqueued before it existed are not skipped.
func (q *RedisQueue) ensureGroup(ctx context.Context) error {
	err := q.cfg.Client.XGroupCreateMkStream(ctx, q.cfg.Stream, q.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group: %w", err)
	}
	return nil
}

func isNoGroup(err error) bool { return strings.HasPrefix(err.Error(), "NOGROUP") }

// outage logs the first failure of an outage; up logs its end.
func (q *RedisQueue) outage(ctx context.Context, err error) {
	if !q.down.Swap(true) {
		q.cfg.Logger.ErrorContext(ctx, "jobs: redis queue unreachable; jobs wait until it is back", "err", err)
	}
}

func (q *RedisQueue) up() {
	if q.down.Swap(false) {
		q.cfg.Logger.Info("jobs: redis queue reachable again")
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

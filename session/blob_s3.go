package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3BlobConfig configures an S3BlobStore. The same settings reach AWS S3, Cloudflare R2 and
// MinIO; only Endpoint (and for R2 the account id inside it) differs.
type S3BlobConfig struct {
	// Endpoint is the service's base URL, e.g. "https://<account>.r2.cloudflarestorage.com" or
	// "http://minio:9000". Empty means AWS S3, found from Region.
	Endpoint string
	// Region signs the requests. Default: "auto" for an R2 endpoint (*.r2.cloudflarestorage.com),
	// otherwise "us-east-1" (AWS's default, and what MinIO expects unless told otherwise).
	Region string
	// Bucket holds the blobs. Required; it must exist (the store never creates buckets, so a
	// typo fails Ping instead of silently filling a new bucket).
	Bucket string
	// AccessKey and SecretKey are the static credentials (R2: an API token's access key id and
	// secret). Required: a store that fell back to anonymous requests would fail later, on
	// the first write, with a less helpful message.
	AccessKey string
	SecretKey string
	// SessionToken goes with temporary AWS credentials. Default "" (none).
	SessionToken string
	// PathStyle addresses the bucket as https://host/bucket/key instead of
	// https://bucket.host/key. Default (nil): path-style for a custom Endpoint (MinIO and most
	// self-hosted servers need it, R2 accepts it), virtual-hosted for AWS, which is phasing
	// path-style out.
	PathStyle *bool
	// Prefix is prepended to every key ("dartmouth" stores "tts/ab.mp3" as
	// "dartmouth/tts/ab.mp3"), so several deployments can share a bucket. Default "" (none).
	// It follows the key rules; a trailing slash is optional.
	Prefix string
	// HTTPClient sends the requests. Default: the SDK's client (timeouts, keep-alive).
	HTTPClient *http.Client
	// MaxAttempts is how many times one operation is tried before its error is returned.
	// 500/502/503/504, throttling (429, SlowDown) and broken or refused connections are
	// retried with jittered exponential backoff; a reply that means "no" (403, 404) is
	// returned at once. Default 3 (the SDK's).
	MaxAttempts int
	// MaxBackoff caps the wait between two attempts. Default 20s (the SDK's).
	MaxBackoff time.Duration
}

// S3BlobStore keeps blobs in an S3-compatible bucket. Keys follow the same rule as the local
// store (see checkBlobKey), so the two are interchangeable.
type S3BlobStore struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
}

var _ BlobStore = (*S3BlobStore)(nil)

// s3SpoolMemory is how much of a Put is buffered in memory before it spills to a temporary
// file. TTS audio (a sentence is tens of kilobytes) never leaves memory.
const s3SpoolMemory = 8 << 20

// NewS3BlobStore checks the configuration and builds the client. It does not contact the
// service; call Ping for that.
func NewS3BlobStore(cfg S3BlobConfig) (*S3BlobStore, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 blob store: a bucket is required")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 blob store: an access key and a secret key are required")
	}
	custom := cfg.Endpoint != ""
	if custom {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3 blob store: endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
		if cfg.Region == "" && strings.HasSuffix(u.Hostname(), ".r2.cloudflarestorage.com") {
			cfg.Region = "auto"
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	prefix := strings.TrimSuffix(cfg.Prefix, "/")
	if prefix != "" {
		if err := checkBlobKey(prefix); err != nil {
			return nil, fmt.Errorf("s3 blob store: prefix: %w", err)
		}
		prefix += "/"
	}
	pathStyle := custom
	if cfg.PathStyle != nil {
		pathStyle = *cfg.PathStyle
	}

	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: pathStyle,
		Credentials: aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)),
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	// The SDK's standard retryer, as s3.New would build it, with the configured limits, and
	// 429 retried too: R2 and GCS answer it, with no error code the SDK knows, to more than
	// one write of a key per second, which the TTS cache does when replicas synthesize the
	// same sentence at once.
	opts.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
		if cfg.MaxAttempts > 0 {
			o.MaxAttempts = cfg.MaxAttempts
		}
		if cfg.MaxBackoff > 0 {
			o.MaxBackoff = cfg.MaxBackoff
		}
		o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{http.StatusTooManyRequests: {}}})
	})
	if custom {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
		// Since 2025 the SDK adds CRC checksums to every upload by default, which several
		// S3-compatible services (older MinIO, R2 for some algorithms, gofakes3) reject or
		// mishandle. Send them only where the operation requires them.
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	return &S3BlobStore{client: s3.New(opts), bucket: cfg.Bucket, prefix: prefix}, nil
}

func (s *S3BlobStore) object(key string) (string, error) {
	if err := checkBlobKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements BlobStore. S3 replaces objects atomically; the content is read in full first
// (memory, then a temporary file past s3SpoolMemory) because a signed upload needs its length
// and a reader that fails halfway must leave the previous blob untouched, as on the local
// store.
func (s *S3BlobStore) Put(ctx context.Context, key string, r io.Reader, contentType string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	body, size, cleanup, err := spool(ctx, r)
	if err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	defer cleanup()
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(obj),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	return nil
}

// Get implements BlobStore; the object streams from the service as the caller reads.
func (s *S3BlobStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(obj)})
	if isNoSuchKey(err) {
		return nil, fmt.Errorf("%w: %s", ErrBlobNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob get %s: %w", key, err)
	}
	return out.Body, nil
}

// Delete implements BlobStore. S3 answers a delete of a missing object with success.
func (s *S3BlobStore) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(obj)}); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	return nil
}

// Ping implements BlobStore with HeadBucket: the endpoint answers, the credentials are valid
// and the bucket exists. It does not write, so it stays cheap on a health-check path and
// does not need delete permission.
func (s *S3BlobStore) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("blob store s3 bucket %q: %w", s.bucket, err)
	}
	return nil
}

// isNoSuchKey reports an error that means "no object under this key", not a missing bucket
// or a refused request.
func isNoSuchKey(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound")
}

// spool reads r to its end into a seekable body: memory up to s3SpoolMemory, a temporary file
// beyond. cleanup releases the file; it is a no-op for memory.
func spool(ctx context.Context, r io.Reader) (body io.ReadSeeker, size int64, cleanup func(), err error) {
	src := contextReader{ctx: ctx, r: r}
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, src, s3SpoolMemory+1)
	if errors.Is(err, io.EOF) {
		return bytes.NewReader(buf.Bytes()), n, func() {}, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	f, err := os.CreateTemp("", "dartmouth-s3-put-*")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup = func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	if _, err := buf.WriteTo(f); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	rest, err := io.Copy(f, src)
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return f, n + rest, cleanup, nil
}

package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// digestMetaKey is the user-metadata key holding "sha256:<hex>" of the object
// (sent as x-amz-meta-pipefn-digest).
const digestMetaKey = "pipefn-digest"

// defaultPartSize is the multipart part size and the size above which Put
// switches from one PutObject to a multipart upload.
const defaultPartSize = 64 << 20

// S3Options tunes the S3 store. The zero value uses the SDK's default
// configuration chain (environment, shared config files, web identity, IMDS).
type S3Options struct {
	// Endpoint overrides the S3 endpoint (an S3-compatible server such as
	// MinIO). Empty: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS.
	Endpoint string
	// PathStyle addresses buckets as https://host/bucket/key instead of
	// https://bucket.host/key. It is also switched on by AWS_S3_USE_PATH_STYLE=true
	// and whenever an endpoint override is in effect, because S3-compatible
	// servers rarely have wildcard DNS for virtual-hosted buckets.
	PathStyle bool
	// Region; empty: from the environment/config, else us-east-1.
	Region string
	// PartSize for multipart uploads (minimum 5 MiB); 0: 64 MiB.
	PartSize int64
	// TempDir is where Put spools uploads so the body has a known size; empty:
	// os.TempDir().
	TempDir string
}

// S3 stores artifacts in S3 or an S3-compatible server, addressed by
// s3://bucket/key URIs. Put spools the stream to a temporary file while
// hashing it, so the object's size and digest are known before the upload and
// the digest can be stored as object metadata; memory use stays constant.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	partSize int64
	tempDir  string
}

// NewS3 builds an S3 store from the SDK's default configuration and opts.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	var loadOpts []func(*config.LoadOptions) error
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("artifacts: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// S3-compatible servers ignore the region but SigV4 needs one.
		cfg.Region = "us-east-1"
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	pathStyle := opts.PathStyle || endpoint != ""
	if v, err := strconv.ParseBool(os.Getenv("AWS_S3_USE_PATH_STYLE")); err == nil {
		pathStyle = pathStyle || v
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
	})
	part := opts.PartSize
	if part <= 0 {
		part = defaultPartSize
	}
	if part < 5<<20 {
		return nil, fmt.Errorf("artifacts: S3 part size %d is below the S3 minimum of 5 MiB", part)
	}
	return &S3{client: client, presign: s3.NewPresignClient(client), partSize: part, tempDir: opts.TempDir}, nil
}

// ParseS3URI splits s3://bucket/key into bucket and key.
func ParseS3URI(uri string) (bucket, key string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", fmt.Errorf("artifacts: %q is not a URI: %w", uri, err)
	}
	if u.Scheme != "s3" {
		return "", "", fmt.Errorf("artifacts: %q is not an s3:// URI", uri)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("artifacts: %q has no bucket", uri)
	}
	key = strings.TrimPrefix(u.Path, "/")
	if key == "" {
		return "", "", fmt.Errorf("artifacts: %q has no object key", uri)
	}
	return u.Host, key, nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, uri string, r io.Reader) (Info, error) {
	bucket, key, err := ParseS3URI(uri)
	if err != nil {
		return Info{}, err
	}
	spool, err := os.CreateTemp(s.tempDir, "pipefn-upload-*")
	if err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: spool: %w", uri, err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	d := newDigestWriter()
	if _, err := io.Copy(io.MultiWriter(spool, d), ctxReader{ctx, r}); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: spool: %w", uri, err)
	}
	info := Info{URI: uri, Size: d.n, Digest: d.digest()}
	meta := map[string]string{digestMetaKey: info.Digest}
	if info.Size <= s.partSize {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			Body:          io.NewSectionReader(spool, 0, info.Size),
			ContentLength: aws.Int64(info.Size),
			Metadata:      meta,
		}, withPayloadHash(strings.TrimPrefix(info.Digest, "sha256:")))
		if err != nil {
			return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
		}
		return info, nil
	}
	if err := s.multipart(ctx, bucket, key, spool, info.Size, meta); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	return info, nil
}

// multipart uploads the spooled file in parts, aborting the upload on failure
// so no orphaned parts keep costing storage.
func (s *S3) multipart(ctx context.Context, bucket, key string, f *os.File, size int64, meta map[string]string) (err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Metadata: meta,
	})
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	defer func() {
		if err != nil {
			// A fresh context: the abort must run even when ctx was cancelled.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: aws.String(key), UploadId: created.UploadId,
			})
		}
	}()
	var parts []s3types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+s.partSize, n+1 {
		length := min(s.partSize, size-off)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      created.UploadId,
			PartNumber:    aws.Int32(n),
			Body:          io.NewSectionReader(f, off, length),
			ContentLength: aws.Int64(length),
		})
		if err != nil {
			return fmt.Errorf("upload part %d: %w", n, err)
		}
		// Only ETags: per-part checksums would need a checksum algorithm
		// declared at CreateMultipartUpload, and our sha256 digest is
		// recorded in metadata anyway.
		parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: created.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, uri string) (io.ReadCloser, error) {
	bucket, key, err := ParseS3URI(uri)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("artifacts: get %s: %w", uri, notFound(err))
	}
	return out.Body, nil
}

// Stat implements Store. The digest is the one Put recorded in the object's
// metadata; objects written by other tools have none.
func (s *S3) Stat(ctx context.Context, uri string) (Info, error) {
	bucket, key, err := ParseS3URI(uri)
	if err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return Info{}, fmt.Errorf("artifacts: stat %s: %w", uri, notFound(err))
	}
	info := Info{URI: uri, Size: aws.ToInt64(out.ContentLength)}
	for k, v := range out.Metadata {
		// Servers differ in the case they return metadata keys in.
		if strings.EqualFold(k, digestMetaKey) {
			info.Digest = v
		}
	}
	return info, nil
}

// Presign returns an HTTPS URL that downloads the object at uri without
// credentials for ttl.
func (s *S3) Presign(ctx context.Context, uri string, ttl time.Duration) (string, error) {
	bucket, key, err := ParseS3URI(uri)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("artifacts: presign %s: ttl %v must be positive", uri, ttl)
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("artifacts: presign %s: %w", uri, err)
	}
	return req.URL, nil
}

// CreateBucket creates bucket if it does not exist yet. The launcher never
// calls it; tests and `pipefn up` do, to prepare a fresh pipeline root.
func (s *S3) CreateBucket(ctx context.Context, bucket string) error {
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	var exists *s3types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("artifacts: create bucket %q: %w", bucket, err)
	}
	return nil
}

// ErrNotExist is wrapped by Get and Stat errors when the object does not exist,
// for both stores (the Local store wraps fs.ErrNotExist, which matches too).
var ErrNotExist = errors.New("artifact does not exist")

// notFound marks S3's not-found answers so callers can use errors.Is.
func notFound(err error) error {
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	var api smithy.APIError
	if errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey")) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return err
}

// withPayloadHash signs a request with the body's SHA-256, which Put already
// computed while spooling, instead of letting the SDK read the file again to
// hash it (and once more for a CRC32 checksum). The server still verifies
// the body against the signed hash, so integrity is unchanged.
func withPayloadHash(hexSum string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("pipefnPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hexSum), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}

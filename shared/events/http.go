package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/pipefn/pipefn/shared/api"
)

// MaxEventBytes bounds the body of an incoming event, so that a bad sender cannot make a
// function buffer without limit. A run.status event with every task of a large run stays
// well below it.
const MaxEventBytes = 16 << 20

// HTTPHandler serves CloudEvents over HTTP as a Knative Broker (or any CloudEvents HTTP
// sender) delivers them, in binary or structured mode. Status codes follow the Knative
// delivery contract: 200 with the reply event in binary mode, 202 when there is no reply;
// 400 for a bad or unroutable event and 413 above MaxEventBytes (neither is redelivered);
// 500 or 503 for a transient failure (the Broker redelivers).
func HTTPHandler(r *Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "CloudEvents are delivered with POST", http.StatusMethodNotAllowed)
			return
		}
		if cehttp.IsHTTPBatch(req.Header) {
			http.Error(w, "batched CloudEvents are not supported", http.StatusBadRequest)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, MaxEventBytes)
		e, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			status := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				status = http.StatusRequestEntityTooLarge
			case errors.Is(err, binding.ErrUnknownEncoding):
				// Neither ce-* headers nor a cloudevents content type: not a CloudEvent.
				status = http.StatusUnsupportedMediaType
			}
			r.log.WarnContext(req.Context(), "rejecting malformed CloudEvent", "err", err)
			http.Error(w, "malformed CloudEvent: "+err.Error(), status)
			return
		}
		ctx := req.Context()
		reply, err := r.Dispatch(ctx, *e)
		if err != nil {
			status := statusFor(err)
			lvl := slog.LevelError
			if status < 500 {
				lvl = slog.LevelWarn
			}
			r.log.Log(ctx, lvl, "event handler failed", "type", e.Type(), "id", e.ID(), "subject", e.Subject(),
				"team", Team(*e), "status", status, "err", err)
			http.Error(w, fmt.Sprintf("event %s (%s): %v", e.ID(), e.Type(), err), status)
			return
		}
		if reply == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		// binding.ToMessage of an Event writes binary mode unless a format is forced.
		if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), http.StatusOK, w); err != nil {
			r.log.ErrorContext(ctx, "writing reply event", "type", reply.Type(), "id", reply.ID(), "err", err)
		}
	})
}

// statusFor maps a handler error to the HTTP status the Broker acts on.
func statusFor(err error) int {
	switch {
	case IsPermanent(err):
		return http.StatusBadRequest
	case api.KindOf(err) == api.KindUnavailable,
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Sender sends one event onward: to a Broker over HTTP, or into the in-process Bus.
type Sender interface {
	Send(ctx context.Context, e cloudevents.Event) error
}

// HTTPSender posts events in binary mode to a fixed URL (a Broker's ingress, K_SINK).
type HTTPSender struct {
	URL    string
	Client *http.Client
}

// NewHTTPSender returns a sender to url; client may be nil (http.DefaultClient).
func NewHTTPSender(url string, client *http.Client) *HTTPSender {
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTPSender{URL: url, Client: client}
}

// SinkFromEnv returns K_SINK, the URL Knative injects into a SinkBinding'd service.
func SinkFromEnv() (string, error) {
	s := os.Getenv("K_SINK")
	if s == "" {
		return "", errors.New("K_SINK is not set: bind the service to a Broker with a SinkBinding, or pass the Broker URL")
	}
	return s, nil
}

// Send posts e. A 4xx answer (other than 408/429) is Permanent; 5xx and network errors are
// transient, so that a caller's retry policy (or the Bus) can tell them apart.
func (s *HTTPSender) Send(ctx context.Context, e cloudevents.Event) error {
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, s.URL, e)
	if err != nil {
		return Permanent(fmt.Errorf("send event %s (%s) to %s: %w", e.ID(), e.Type(), s.URL, err))
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("send event %s (%s) to %s: %w", e.ID(), e.Type(), s.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("send event %s (%s) to %s: %s: %s", e.ID(), e.Type(), s.URL, resp.Status, body)
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return Permanent(err)
	}
	return err
}

package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipefn/pipefn/shared/allinone"
)

func newUpCmd() *cobra.Command {
	var (
		addr, redisURL, backend, dataDir, kubeconfig string
		tick, cacheMaxAge                            time.Duration
		authMode                                     string
		verbose                                      bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every pipefn function in one process on this machine",
		Long: `Run the submit, compile, status, schedule and lineage functions in one process on one
port, with an in-process event bus, an embedded Redis (unless --redis names one) and the
local executor. The REST API, the event endpoint (POST /events) and the web UI share the
address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("addr") {
				if p := os.Getenv("PORT"); p != "" {
					addr = ":" + p
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			switch backend {
			case "", "local", "tekton", "argo":
			default:
				return fmt.Errorf("--backend %q: want local, tekton or argo", backend)
			}
			switch authMode {
			case "off":
			case "tokens":
				if redisURL == "" {
					return fmt.Errorf("--auth tokens needs --redis: tokens are made with `pipefn team create|token --redis URL` in that Redis")
				}
			default:
				return fmt.Errorf("--auth %q: want off or tokens", authMode)
			}
			srv, err := allinone.Start(cmd.Context(), allinone.Config{
				Addr: addr, RedisURL: redisURL, Backend: backend, DataDir: dataDir, Tick: tick, Log: log,
				CacheMaxAge: cacheMaxAge, Kubeconfig: kubeconfig, AuthTokens: authMode == "tokens",
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "pipefn is up at %s (backend %s)\n", srv.URL, backendOr(backend))
			if srv.Embedded() {
				fmt.Fprintln(out, "state: embedded Redis, kept in memory: it is lost when pipefn up exits (use --redis redis://... to keep it)")
			} else {
				fmt.Fprintf(out, "state: Redis at %s\n", redactedRedis(redisURL))
			}
			fmt.Fprintf(out, "data:  %s\n", srv.DataDir())
			return srv.Wait()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (PORT in the environment is honoured)")
	cmd.Flags().StringVar(&redisURL, "redis", os.Getenv("REDIS_URL"), "Redis URL (default: embedded, in memory)")
	cmd.Flags().StringVar(&backend, "backend", "local", "default backend of runs: local|tekton|argo")
	cmd.Flags().StringVar(&authMode, "auth", "off", "off (one team, no tokens) or tokens (API tokens from `pipefn team token`)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig for the tekton and argo backends (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	cmd.Flags().StringVar(&dataDir, "data", "", "directory for logs and local artifacts (default: a temporary one)")
	cmd.Flags().DurationVar(&tick, "tick", 5*time.Second, "period of schedule and resync ticks")
	cmd.Flags().DurationVar(&cacheMaxAge, "cache-max-age", 0, "reuse step-cache entries no older than this (0: any age)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func backendOr(b string) string {
	if b == "" {
		return "local"
	}
	return b
}

func redactedRedis(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '@' {
			return "redis://***@" + u[i+1:]
		}
	}
	return u
}

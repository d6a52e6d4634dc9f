package handler

import (
	"testing"
	"time"
)

// The providers' own published examples: a verifier that disagrees with them would
// refuse every real delivery.
func TestProviderSignatureVectors(t *testing.T) {
	// GitHub's "Validating webhook deliveries" example.
	if !VerifyGitHub("It's a Secret to Everybody", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte("Hello, World!")) {
		t.Error("GitHub's documented example does not verify")
	}
	if VerifyGitHub("It's a Secret to Everybody", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", []byte("Hello, World!")) {
		t.Error("a one-digit change verifies")
	}
	// Slack's "Verifying requests from Slack" example.
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	at := time.Unix(1531420618, 0)
	const sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if !VerifySlack("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", sig, body, at.Add(time.Minute), 5*time.Minute) {
		t.Error("Slack's documented example does not verify")
	}
	if VerifySlack("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", sig, body, at.Add(6*time.Minute), 5*time.Minute) {
		t.Error("Slack's example verifies six minutes later")
	}
	c, err := ParseChatCommand(body)
	if err != nil || c.Verb != "help" || c.User != "roadrunner" {
		t.Errorf("Slack's example body: %+v, %v", c, err)
	}
}

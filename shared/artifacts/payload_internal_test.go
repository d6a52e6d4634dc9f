package artifacts

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSignedPayloadHashIsChecked proves the precomputed hash really is what
// gets signed: a wrong one must be rejected by the server. (Without the
// middleware the SDK would hash the body itself and the upload would pass.)
func TestSignedPayloadHashIsChecked(t *testing.T) {
	st := startS3ForInternalTest(t)
	wrong := strings.Repeat("0", 64)
	_, err := st.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("internal"), Key: aws.String("k"),
		Body: strings.NewReader("payload"), ContentLength: aws.Int64(7),
	}, withPayloadHash(wrong))
	if err == nil {
		t.Fatal("PutObject with a wrong signed payload hash succeeded; the precomputed hash is not being used")
	}
	if !strings.Contains(err.Error(), "SHA256") && !strings.Contains(err.Error(), "Sha256") {
		t.Logf("rejected with: %v", err)
	}
}

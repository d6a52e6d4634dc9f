package e2e

import (
	"encoding/json"

	"github.com/pipefn/pipefn/shared/ir"
)

func irDocuments(data []byte) ([]json.RawMessage, error) { return ir.Documents(data) }

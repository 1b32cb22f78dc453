package domain_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"switchboard/domain"
)

type evt struct {
	A int `json:"a,omitempty"`
}

func (evt) Name() string { return "Evt" }

func TestEnvelopeMergesTriggeredBy(t *testing.T) {
	ctx := domain.WithTrigger(context.Background(), domain.TriggeredBy{OperationID: "v1.x.store", RequestID: "r-1"})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		ev   evt
		want string
	}{
		{"with fields", ctx, evt{A: 1}, `{"a":1,"x-triggered-by":{"operation_id":"v1.x.store","request_id":"r-1"}}`},
		{"empty object", ctx, evt{}, `{"x-triggered-by":{"operation_id":"v1.x.store","request_id":"r-1"}}`},
		{"no request", context.Background(), evt{A: 2}, `{"a":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := domain.NewEnvelope(tc.ctx, domain.Scope{}, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(env.Data) != tc.want || env.Name != "Evt" || env.ID == "" {
				t.Fatalf("got %s (%+v)", env.Data, env)
			}
			var v map[string]any
			if err := json.Unmarshal(env.Data, &v); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

type pinged struct {
	N int `json:"n"`
}

func (pinged) Name() string { return "Pinged" }

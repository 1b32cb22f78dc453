package chat_test

import (
	"sync"
	"testing"

	"switchboard/chat"
	"switchboard/domain"
	"switchboard/domain/dbtest"
)

// TestConcurrentRepeatsAndFirstReplies: clients retrying one creation_uuid
// at once get one message and one event; simultaneous first replies share
// one thread.
func TestConcurrentRepeatsAndFirstReplies(t *testing.T) {
	const n = 10
	dbtest.ForEach(t, func(t *testing.T, db *domain.DB) {
		w := newWorld(t, db)
		r := setup(w, false)
		root, _, err := w.s.PostMessage(as("42"), r.ID, chat.MessageInput{Body: "root"})
		if err != nil {
			t.Fatal(err)
		}
		w.emitted()
		type result struct {
			m       chat.JSONMessage
			created bool
			err     error
		}
		run := func(in func(i int) (string, chat.MessageInput)) []result {
			out := make([]result, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					member, mi := in(i)
					m, created, err := w.s.PostMessage(as(member), r.ID, mi)
					out[i] = result{m, created, err}
				}()
			}
			wg.Wait()
			return out
		}

		cu := "same"
		created := 0
		var id int64
		for _, res := range run(func(int) (string, chat.MessageInput) {
			return "43", chat.MessageInput{Body: "retry", CreationUUID: &cu}
		}) {
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.created {
				created++
			}
			if id != 0 && res.m.ID != id {
				t.Fatalf("repeats got different messages %d and %d", id, res.m.ID)
			}
			id = res.m.ID
		}
		if created != 1 {
			t.Fatalf("%d of %d repeats created a message, want 1", created, n)
		}
		if envs := w.emitted(); len(envs) != 1 {
			t.Fatalf("%d events for one message", len(envs))
		}

		var thread int64
		for _, res := range run(func(i int) (string, chat.MessageInput) {
			return []string{"42", "43", "44"}[i%3], chat.MessageInput{Body: "re", ParentMessageID: &root.ID}
		}) {
			if res.err != nil {
				t.Fatal(res.err)
			}
			if thread != 0 && *res.m.ChatThreadID != thread {
				t.Fatalf("replies landed in threads %d and %d", thread, *res.m.ChatThreadID)
			}
			thread = *res.m.ChatThreadID
		}
		l, err := w.s.ListMessages(as("42"), r.ID, &root.ID, domain.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Data) != n || l.Data[0].ChatThreadRepliesCount != n || l.Data[0].TotalThreadParticipantsCount != 3 {
			t.Fatalf("thread has %d replies (count %d, %d participants), want %d and 3",
				len(l.Data), l.Data[0].ChatThreadRepliesCount, l.Data[0].TotalThreadParticipantsCount, n)
		}
	}, chat.Migrations())
}

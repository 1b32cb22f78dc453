package gateway

import "slices"

// idSet is one user's connection ids. Nearly every user has one or two
// connections, and a slice of them costs a fraction of a map's smallest
// table (≈ 250 bytes of every idle connection, see BENCHMARKS.md, "Session
// 10"); past idSetSmall ids the set moves to a map, so a user with
// thousands of connections keeps O(1) operations. The zero value is empty.
// It is a value type: store it back after add and remove.
type idSet struct {
	few  []string
	many map[string]struct{}
}

// idSetSmall is the size up to which a linear scan beats hashing.
const idSetSmall = 8

func (s *idSet) has(id string) bool {
	if s.many != nil {
		_, ok := s.many[id]
		return ok
	}
	return slices.Contains(s.few, id)
}

// add reports whether id was not there yet.
func (s *idSet) add(id string) bool {
	if s.has(id) {
		return false
	}
	if s.many != nil {
		s.many[id] = struct{}{}
		return true
	}
	if len(s.few) < idSetSmall {
		s.few = append(s.few, id)
		return true
	}
	s.many = make(map[string]struct{}, 2*idSetSmall)
	for _, v := range s.few {
		s.many[v] = struct{}{}
	}
	s.many[id] = struct{}{}
	s.few = nil
	return true
}

// remove reports whether id was there.
func (s *idSet) remove(id string) bool {
	if s.many != nil {
		if _, ok := s.many[id]; !ok {
			return false
		}
		delete(s.many, id)
		return true
	}
	i := slices.Index(s.few, id)
	if i < 0 {
		return false
	}
	last := len(s.few) - 1
	s.few[i], s.few[last] = s.few[last], ""
	s.few = s.few[:last]
	if last == 0 {
		s.few = nil
	}
	return true
}

func (s *idSet) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// each calls f for every id, in no particular order.
func (s *idSet) each(f func(id string)) {
	if s.many != nil {
		for id := range s.many {
			f(id)
		}
		return
	}
	for _, id := range s.few {
		f(id)
	}
}

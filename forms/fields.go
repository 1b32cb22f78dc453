package forms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"switchboard/domain"
)

// Field types a form may use.
const (
	TypeText     = "text"
	TypeNumber   = "number"
	TypeChoice   = "choice"
	TypeCheckbox = "checkbox"
)

// Limits of a form definition and of one answer.
const (
	MaxFields     = 100
	MaxOptions    = 100
	MaxTextAnswer = 5000
)

// Field is one question of a form.
type Field struct {
	Key      string   `json:"key"`
	Label    string   `json:"label"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Options  []string `json:"options,omitempty"`
}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func validateFields(fields []Field) error {
	if len(fields) == 0 || len(fields) > MaxFields {
		return domain.Invalid("fields", "must list 1 to %d fields", MaxFields)
	}
	seen := map[string]bool{}
	for i, f := range fields {
		name := fmt.Sprintf("fields[%d]", i)
		if !keyRE.MatchString(f.Key) {
			return domain.Invalid(name+".key", "must match %s", keyRE)
		}
		if seen[f.Key] {
			return domain.Invalid(name+".key", "%q is used twice", f.Key)
		}
		seen[f.Key] = true
		if strings.TrimSpace(f.Label) == "" || len(f.Label) > 500 {
			return domain.Invalid(name+".label", "is required (at most 500 characters)")
		}
		switch f.Type {
		case TypeText, TypeNumber, TypeCheckbox:
			if len(f.Options) > 0 {
				return domain.Invalid(name+".options", "only choice fields have options")
			}
		case TypeChoice:
			if len(f.Options) == 0 || len(f.Options) > MaxOptions {
				return domain.Invalid(name+".options", "a choice field needs 1 to %d options", MaxOptions)
			}
			opts := map[string]bool{}
			for _, o := range f.Options {
				if o == "" || len(o) > 200 || opts[o] {
					return domain.Invalid(name+".options", "options must be distinct, non-empty, at most 200 characters")
				}
				opts[o] = true
			}
		default:
			return domain.Invalid(name+".type", "must be one of text, number, choice, checkbox")
		}
	}
	return nil
}

// validateAnswers checks answers against the form's fields and returns them
// re-encoded canonically (keys sorted, no unknown keys). Errors name the
// field as "answers.{key}" so a client can point at the question.
func validateAnswers(fields []Field, raw json.RawMessage) (json.RawMessage, error) {
	answers := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(raw, &answers); err != nil {
		return nil, domain.Invalid("answers", "must be an object keyed by field key")
	}
	known := map[string]bool{}
	out := map[string]any{}
	for _, f := range fields {
		known[f.Key] = true
		name := "answers." + f.Key
		v, present := answers[f.Key]
		if present && bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			present = false
		}
		if !present {
			if f.Required {
				return nil, domain.Invalid(name, "is required")
			}
			continue
		}
		switch f.Type {
		case TypeText:
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, domain.Invalid(name, "must be a string")
			}
			if len(s) > MaxTextAnswer {
				return nil, domain.Invalid(name, "must be at most %d characters", MaxTextAnswer)
			}
			if f.Required && strings.TrimSpace(s) == "" {
				return nil, domain.Invalid(name, "is required")
			}
			out[f.Key] = s
		case TypeNumber:
			// json.Number also accepts a quoted number; a string is not one.
			var n json.Number
			if t := bytes.TrimSpace(v); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &n) != nil {
				return nil, domain.Invalid(name, "must be a number")
			}
			if _, err := n.Float64(); err != nil {
				return nil, domain.Invalid(name, "must be a finite number")
			}
			out[f.Key] = n
		case TypeChoice:
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, domain.Invalid(name, "must be one of the field's options")
			}
			ok := false
			for _, o := range f.Options {
				ok = ok || o == s
			}
			if !ok {
				return nil, domain.Invalid(name, "must be one of %q", f.Options)
			}
			out[f.Key] = s
		case TypeCheckbox:
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return nil, domain.Invalid(name, "must be true or false")
			}
			// A required checkbox is a consent box: it must be ticked.
			if f.Required && !b {
				return nil, domain.Invalid(name, "must be checked")
			}
			out[f.Key] = b
		}
	}
	for k := range answers {
		if !known[k] {
			return nil, domain.Invalid("answers."+k, "is not a field of this form")
		}
	}
	return json.Marshal(out)
}

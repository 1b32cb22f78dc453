// Package notifications keeps a community member's in-app notifications and
// sends the seed's newNotification, updateNewNotificationCount and
// resetNewNotificationCount events on notification-channel-{member}.
package notifications

import "switchboard/domain"

// NewNotification carries the notification exactly as the REST API shows it.
type NewNotification struct{ Notification }

// Name implements domain.Event.
func (NewNotification) Name() string { return "newNotification" }

// UpdateNewNotificationCount carries the member's unread count, read in the
// transaction that changed it.
type UpdateNewNotificationCount struct {
	NewNotificationsCount int `json:"new_notifications_count"`
}

// Name implements domain.Event.
func (UpdateNewNotificationCount) Name() string { return "updateNewNotificationCount" }

// ResetNewNotificationCount says every notification is read; the count is
// always 0.
type ResetNewNotificationCount struct {
	NewNotificationsCount int `json:"new_notifications_count"`
}

// Name implements domain.Event.
func (ResetNewNotificationCount) Name() string { return "resetNewNotificationCount" }

func scope(member string) domain.Scope {
	return domain.Scope{Members: []string{member}, Stream: domain.StreamNotifications}
}

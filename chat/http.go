package chat

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Routes registers the chat resources under /chat. g must already verify
// the bearer (domain.Authn); the bearer's sub is the acting member.
func Routes(g *echo.Group, s *Store, db *domain.DB) {
	r := g.Group("/chat")

	r.GET("/rooms", func(c echo.Context) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		l, err := s.ListRooms(c.Request().Context(), page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}, domain.Op("v1.chat.rooms.index"))

	r.POST("/rooms", func(c echo.Context) error {
		var in RoomInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		v, err := s.CreateRoom(c.Request().Context(), in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, v)
	}, domain.Op("v1.chat.rooms.store"), domain.Idempotent(db))

	r.GET("/rooms/:room", withRoom(func(c echo.Context, room int64) error {
		v, err := s.Get(c.Request().Context(), room)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}), domain.Op("v1.chat.rooms.show"))

	r.PATCH("/rooms/:room", withRoom(func(c echo.Context, room int64) error {
		var in RoomPatch
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		v, err := s.UpdateRoom(c.Request().Context(), room, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}), domain.Op("v1.chat.rooms.update"))

	r.DELETE("/rooms/:room", withRoom(func(c echo.Context, room int64) error {
		if err := s.DeleteRoom(c.Request().Context(), room); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}), domain.Op("v1.chat.rooms.destroy"))

	r.POST("/rooms/:room/participants", withRoom(func(c echo.Context, room int64) error {
		var in struct {
			MemberID MemberID `json:"member_id"`
		}
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		p, err := s.AddParticipant(c.Request().Context(), room, string(in.MemberID))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, p)
	}), domain.Op("v1.chat.rooms.participants.store"))

	r.DELETE("/rooms/:room/participants/:member", withRoom(func(c echo.Context, room int64) error {
		if err := s.RemoveParticipant(c.Request().Context(), room, c.Param("member")); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}), domain.Op("v1.chat.rooms.participants.destroy"))

	r.POST("/rooms/:room/read", withRoom(func(c echo.Context, room int64) error {
		if err := s.MarkRead(c.Request().Context(), room); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}), domain.Op("v1.chat.rooms.read"))

	r.POST("/rooms/:room/pin", withRoom(func(c echo.Context, room int64) error {
		at, err := s.Pin(c.Request().Context(), room)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ChatRoomPinned{ChatRoomID: room, PinnedAt: domain.Timestamp(at)})
	}), domain.Op("v1.chat.rooms.pin"))

	r.DELETE("/rooms/:room/pin", withRoom(func(c echo.Context, room int64) error {
		if err := s.Unpin(c.Request().Context(), room); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}), domain.Op("v1.chat.rooms.unpin"))

	r.GET("/rooms/:room/messages", withRoom(func(c echo.Context, room int64) error {
		page, err := domain.PageOf(c)
		if err != nil {
			return err
		}
		var parent *int64
		if p := c.QueryParam("parent_message_id"); p != "" {
			id, err := strconv.ParseInt(p, 10, 64)
			if err != nil || id < 1 {
				return domain.Invalid("parent_message_id", "must be a message id")
			}
			parent = &id
		}
		l, err := s.ListMessages(c.Request().Context(), room, parent, page)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, l)
	}), domain.Op("v1.chat.rooms.messages.index"))

	r.POST("/rooms/:room/messages", withRoom(func(c echo.Context, room int64) error {
		var in MessageInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		m, created, err := s.PostMessage(c.Request().Context(), room, in)
		if err != nil {
			return err
		}
		if !created {
			return c.JSON(http.StatusOK, m)
		}
		return c.JSON(http.StatusCreated, m)
	}), domain.Op("v1.chat.rooms.messages.store"), domain.Idempotent(db))

	r.PATCH("/rooms/:room/messages/:id", withRoom(func(c echo.Context, room int64) error {
		id, err := domain.IDParam(c, "id", "message")
		if err != nil {
			return err
		}
		var in EditInput
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		m, err := s.EditMessage(c.Request().Context(), room, id, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, m)
	}), domain.Op("v1.chat.rooms.messages.update"))

	r.DELETE("/rooms/:room/messages/:id", withRoom(func(c echo.Context, room int64) error {
		id, err := domain.IDParam(c, "id", "message")
		if err != nil {
			return err
		}
		if err := s.DeleteMessage(c.Request().Context(), room, id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}), domain.Op("v1.chat.rooms.messages.destroy"))

	r.POST("/threads/:thread/read", func(c echo.Context) error {
		id, err := domain.IDParam(c, "thread", "chat thread")
		if err != nil {
			return err
		}
		if err := s.MarkThreadRead(c.Request().Context(), id); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, domain.Op("v1.chat.threads.read"))
}

// withRoom parses the :room path parameter before the handler runs.
func withRoom(fn func(c echo.Context, room int64) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := domain.IDParam(c, "room", "chat room")
		if err != nil {
			return err
		}
		return fn(c, id)
	}
}

package metrics

import (
	"context"
	"time"

	"maunium.net/go/mautrix/bridgev2"
)

// remoteTime is the event's timestamp on its network, zero when it has none.
func remoteTime(evt bridgev2.RemoteEvent) time.Time {
	if ts, ok := evt.(bridgev2.RemoteEventWithTimestamp); ok {
		return ts.GetTimestamp()
	}
	return time.Time{}
}

// matrixTime is the timestamp of the Matrix event being handled in ctx
// (bridgev2 puts it there), zero when there is none.
func matrixTime(ctx context.Context) time.Time {
	if evt := bridgev2.GetMatrixEventFromContext(ctx); evt != nil && evt.Timestamp > 0 {
		return time.UnixMilli(evt.Timestamp)
	}
	return time.Time{}
}

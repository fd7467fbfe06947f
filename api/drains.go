package api

import "context"

// Drains lists every host's last drain, sorted by host. With q it is a
// blocking read, as DrainStatus.
func (c *Client) Drains(ctx context.Context, q *QueryOptions) ([]Drain, QueryMeta, error) {
	var out []Drain
	meta, err := c.query(ctx, "/v1/drains", q, &out)
	return out, meta, err
}

package api

import (
	"context"
	"net/http"
	"net/url"
)

// UpdateMember sets a member's description and failure domain (`cluster edit`).
func (c *Client) UpdateMember(ctx context.Context, name string, put ClusterMemberPut) error {
	_, err := c.Call(ctx, http.MethodPut, "/1.0/cluster/members/"+url.PathEscape(name), put, nil, "")
	return err
}

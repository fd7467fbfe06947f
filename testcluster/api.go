package testcluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/hostmesh/hostmesh/fsm"
)

// putCluster sets a cluster through a node's API, as meshctl cluster does.
func putCluster(apiAddr string, c fsm.Cluster) error {
	b, _ := json.Marshal(c)
	req, err := http.NewRequest(http.MethodPut, "http://"+apiAddr+"/v1/clusters/"+c.Name, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("put cluster %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("put cluster %s: %s: %s", c.Name, resp.Status, body)
	}
	return nil
}

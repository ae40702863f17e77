package api

import "net/http"

// handleConfig serves GET /_matrix/media/v3/config and /_matrix/client/v1/media/config.
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) error {
	body := map[string]any{}
	if n := s.conf().Uploads.ReportedUploadSize(); n >= 0 {
		body["m.upload.size"] = n
	}
	s.quotaFields(userFrom(r.Context()).UserID, body)
	writeJSON(w, http.StatusOK, body)
	return nil
}

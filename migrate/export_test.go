package migrate

// SetFastPlacement switches placement's shortcuts for a benchmark of the
// old and the new way in one run; it returns the previous setting.
func SetFastPlacement(on bool) bool {
	old := fastPlacement
	fastPlacement = on
	return old
}

package auth

// Verifications reports how many argon2id verifications the service has run.
func (s *Service) Verifications() int64 { return s.verifications.Load() }

package tgsim

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"

	"github.com/gotd/td/crypto/srp"
	"github.com/gotd/td/tg"
)

// The SRP group Telegram uses (a 2048-bit safe prime and g = 3), as found in
// gotd's crypto/srp tests and in Telegram's own account.getPassword answers.
const srpG = 3

var (
	srpPBytes = mustHex("C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F" +
		"48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37" +
		"20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64" +
		"2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4" +
		"A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754" +
		"FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4" +
		"E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F" +
		"0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B")
	srpP = new(big.Int).SetBytes(srpPBytes)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// srpSecret is what the server stores for a 2FA password: the salts and the
// verifier v = g^x mod p. The password itself is not kept.
type srpSecret struct {
	baseSalt1 []byte // salt1 offered to clients setting a new password
	salt1     []byte // baseSalt1 + 32 random bytes, as Telegram does
	salt2     []byte
	v         *big.Int
}

// srpSecrets memoizes verifiers by password, process-wide: PBKDF2 with
// 100000 iterations is slow, and tests create the same 2FA accounts again and
// again. Accounts that share a password share salts, which is harmless here.
var srpSecrets sync.Map // password -> *srpSecret

func newSRPSecret(password string) (*srpSecret, error) {
	if v, ok := srpSecrets.Load(password); ok {
		return v.(*srpSecret), nil
	}
	base, salt2 := randBytes(8), randBytes(16)
	v, salt1, err := srp.NewSRP(rand.Reader).NewHash([]byte(password), srp.Input{
		Salt1: base, Salt2: salt2, G: srpG, P: srpPBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to compute password verifier: %w", err)
	}
	sec := &srpSecret{baseSalt1: base, salt1: salt1, salt2: salt2, v: new(big.Int).SetBytes(v)}
	actual, _ := srpSecrets.LoadOrStore(password, sec)
	return actual.(*srpSecret), nil
}

func algo(salt1, salt2 []byte) *tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow {
	return &tg.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow{
		Salt1: salt1, Salt2: salt2, G: srpG, P: srpPBytes,
	}
}

// srpChallenge is one account.getPassword answer: the server's ephemeral
// secret b and the B it sent.
type srpChallenge struct {
	userID int64
	b      *big.Int
	gb     [256]byte // B, padded
}

func srpHash(data ...[]byte) []byte {
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func pad256(i *big.Int) [256]byte {
	var b [256]byte
	i.FillBytes(b[:])
	return b
}

func srpK() *big.Int {
	g := pad256(big.NewInt(srpG))
	return new(big.Int).SetBytes(srpHash(srpPBytes, g[:]))
}

// challenge computes B = k*v + g^b mod p for a fresh random b.
func (sec *srpSecret) challenge(userID int64) *srpChallenge {
	for {
		b := new(big.Int).SetBytes(randBytes(256))
		gb := new(big.Int).Exp(big.NewInt(srpG), b, srpP)
		kv := new(big.Int).Mul(srpK(), sec.v)
		B := kv.Add(kv, gb).Mod(kv, srpP)
		if B.Sign() == 0 {
			continue
		}
		return &srpChallenge{userID: userID, b: b, gb: pad256(B)}
	}
}

// check verifies the client's proof M1 for its A, as in Telegram's SRP-2FA:
// S = (A * v^u)^b mod p, K = H(S), M1 = H(H(p) xor H(g), H(salt1), H(salt2),
// A, B, K).
func (sec *srpSecret) check(ch *srpChallenge, aBytes, m1 []byte) bool {
	if len(aBytes) == 0 || len(aBytes) > 256 {
		return false
	}
	A := new(big.Int).SetBytes(aBytes)
	if A.Sign() <= 0 || A.Cmp(srpP) >= 0 {
		return false
	}
	ga := pad256(A)
	u := new(big.Int).SetBytes(srpHash(ga[:], ch.gb[:]))
	if u.Sign() == 0 {
		return false
	}
	S := new(big.Int).Exp(sec.v, u, srpP)
	S.Mul(S, A).Mod(S, srpP)
	S.Exp(S, ch.b, srpP)
	sb := pad256(S)
	k := sha256.Sum256(sb[:])

	g := pad256(big.NewInt(srpG))
	hp, hg := sha256.Sum256(srpPBytes), sha256.Sum256(g[:])
	var x [sha256.Size]byte
	for i := range x {
		x[i] = hp[i] ^ hg[i]
	}
	want := srpHash(x[:], srpHash(sec.salt1), srpHash(sec.salt2), ga[:], ch.gb[:], k[:])
	return subtle.ConstantTimeCompare(want, m1) == 1
}

// accountPassword renders account.getPassword's answer.
func accountPassword(sec *srpSecret, ch *srpChallenge, srpID int64) *tg.AccountPassword {
	out := &tg.AccountPassword{
		NewSecureAlgo: &tg.SecurePasswordKdfAlgoSHA512{Salt: randBytes(8)},
		SecureRandom:  randBytes(32),
	}
	if sec == nil {
		out.NewAlgo = algo(randBytes(8), randBytes(16))
		return out
	}
	out.HasPassword = true
	out.CurrentAlgo = algo(sec.salt1, sec.salt2)
	out.SRPB = append([]byte(nil), ch.gb[:]...)
	out.SRPID = srpID
	out.NewAlgo = algo(sec.baseSalt1, sec.salt2)
	return out
}

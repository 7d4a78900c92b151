/*
 * c-roundrobin: a fleet placement policy written in C, against the ABI of
 * docs/abi.md by hand, with no SDK: the ABI is bytes in linear memory, so any
 * language that compiles to WebAssembly can speak it.
 *
 * The rule: a unit goes to the machine with the fewest units placed on it;
 * ties go to the machine whose ID sorts first. Placed one after another,
 * units are dealt round-robin over the machines. A machine whose metadata
 * says drain=true takes no new unit and is turned down with that reason.
 *
 * The cluster lives in this module between calls (fleet_apply keeps it
 * current): the machines, sorted by ID, each with its drain flag and a count
 * of the units placed on it, from ops 4 and 5. Unit definitions (ops 6, 7)
 * are read to check and skip them, not kept. Build with build.sh.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* The update ops of docs/abi.md. */
enum {
	OP_RESET = 1,
	OP_MACHINE = 2,
	OP_MACHINE_GONE = 3,
	OP_UNIT_PLACED = 4,
	OP_UNIT_UNPLACED = 5,
	OP_UNIT_DEFINED = 6,
	OP_UNIT_FORGOTTEN = 7,
};

/* The one reason this policy gives. */
static const char drain_reason[] = "draining: metadata drain=true";

struct machine {
	char *id;
	uint32_t id_len;
	uint32_t units; /* placements on it (ops 4 and 5) */
	int draining;   /* metadata drain=true */
};

/* machines is kept sorted by ID (bytewise, as Go compares strings). */
static struct machine *machines;
static uint32_t n_machines, cap_machines;

/* in is the buffer fleet_alloc hands the host; out holds the last decision. */
static uint8_t *in;
static uint32_t cap_in;
static uint8_t *out;
static uint32_t cap_out;

/* grow makes *buf hold at least n bytes, or traps: a policy that cannot get
 * memory fails its call (the host then replaces the instance) rather than
 * answer wrongly. */
static void grow(uint8_t **buf, uint32_t *cap, uint32_t n) {
	if (n <= *cap)
		return;
	free(*buf);
	*buf = malloc(n);
	if (*buf == NULL)
		__builtin_trap();
	*cap = n;
}

/* reader walks a message; after the first short read every read fails. */
struct reader {
	const uint8_t *p;
	uint32_t left;
	int bad;
};

static uint32_t read_u32(struct reader *r) {
	if (r->bad || r->left < 4) {
		r->bad = 1;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint8_t read_u8(struct reader *r) {
	if (r->bad || r->left < 1) {
		r->bad = 1;
		return 0;
	}
	r->left--;
	return *r->p++;
}

/* read_str returns a string's bytes, inside the message (not a copy). */
static const uint8_t *read_str(struct reader *r, uint32_t *len) {
	uint32_t n = read_u32(r);
	if (r->bad || r->left < n) {
		r->bad = 1;
		*len = 0;
		return (const uint8_t *)"";
	}
	const uint8_t *s = r->p;
	r->p += n;
	r->left -= n;
	*len = n;
	return s;
}

/* read_count reads a count of items of at least min bytes each, refusing
 * one larger than the rest of the message could hold. */
static uint32_t read_count(struct reader *r, uint32_t min) {
	uint32_t n = read_u32(r);
	if (!r->bad && (uint64_t)n * min > r->left)
		r->bad = 1;
	return r->bad ? 0 : n;
}

/* skip_request reads past a request (op 6, and fleet_place's input). */
static void skip_request(struct reader *r) {
	uint32_t len;
	read_str(r, &len);
	for (uint32_t n = read_count(r, 12); n > 0 && !r->bad; n--) {
		read_str(r, &len); /* section */
		read_str(r, &len); /* name */
		read_str(r, &len); /* value */
	}
}

static int compare_id(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len) {
	int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
	if (c != 0)
		return c;
	return a_len < b_len ? -1 : a_len > b_len;
}

/* find returns the index of the machine with id, or where it would go, and
 * sets *found. */
static uint32_t find(const uint8_t *id, uint32_t len, int *found) {
	uint32_t lo = 0, hi = n_machines;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = compare_id((const uint8_t *)machines[mid].id, machines[mid].id_len, id, len);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static void reset(void) {
	for (uint32_t i = 0; i < n_machines; i++)
		free(machines[i].id);
	n_machines = 0;
}

/* put adds a machine, or updates the drain flag of a known one. */
static void put(const uint8_t *id, uint32_t len, int draining) {
	int found;
	uint32_t i = find(id, len, &found);
	if (found) {
		machines[i].draining = draining;
		return;
	}
	if (n_machines == cap_machines) {
		uint32_t c = cap_machines ? 2 * cap_machines : 16;
		struct machine *m = realloc(machines, c * sizeof *m);
		if (m == NULL)
			__builtin_trap();
		machines = m, cap_machines = c;
	}
	char *copy = malloc(len ? len : 1); /* the message is overwritten by the next call */
	if (copy == NULL)
		__builtin_trap();
	memcpy(copy, id, len);
	memmove(&machines[i + 1], &machines[i], (n_machines - i) * sizeof *machines);
	machines[i] = (struct machine){.id = copy, .id_len = len, .units = 0, .draining = draining};
	n_machines++;
}

static void drop(const uint8_t *id, uint32_t len) {
	int found;
	uint32_t i = find(id, len, &found);
	if (!found)
		return;
	free(machines[i].id);
	memmove(&machines[i], &machines[i + 1], (n_machines - i - 1) * sizeof *machines);
	n_machines--;
}

/* count adds delta to the units of the machine a placement names; a
 * machine this module does not know is ignored, as the Go SDK does. */
static void count(struct reader *r, int delta) {
	uint32_t len;
	read_str(r, &len); /* the unit: only counted */
	const uint8_t *id = read_str(r, &len);
	if (r->bad)
		return;
	int found;
	uint32_t i = find(id, len, &found);
	if (!found)
		return;
	if (delta > 0)
		machines[i].units++;
	else if (machines[i].units > 0)
		machines[i].units--;
}

static int equals(const uint8_t *s, uint32_t len, const char *lit) {
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

EXPORT("fleet_abi_version")
uint32_t fleet_abi_version(void) { return 1; }

EXPORT("fleet_alloc")
uint8_t *fleet_alloc(uint32_t size) {
	grow(&in, &cap_in, size);
	return in;
}

/* fleet_apply returns 0, or 1 for a batch that does not decode or holds an
 * unknown op (the host then starts a fresh instance). A record is applied
 * only once it has been read whole. */
EXPORT("fleet_apply")
uint32_t fleet_apply(const uint8_t *ptr, uint32_t len) {
	struct reader r = {ptr, len, 0};
	while (r.left > 0 && !r.bad) {
		uint32_t n;
		const uint8_t *id;
		switch (read_u8(&r)) {
		case OP_RESET:
			reset();
			break;
		case OP_MACHINE: {
			uint32_t id_len, ip_len;
			int draining = 0;
			id = read_str(&r, &id_len);
			read_str(&r, &ip_len);
			for (n = read_count(&r, 8); n > 0 && !r.bad; n--) {
				uint32_t k_len, v_len;
				const uint8_t *k = read_str(&r, &k_len);
				const uint8_t *v = read_str(&r, &v_len);
				if (equals(k, k_len, "drain"))
					draining = equals(v, v_len, "true");
			}
			if (!r.bad)
				put(id, id_len, draining);
			break;
		}
		case OP_MACHINE_GONE:
			id = read_str(&r, &n);
			if (!r.bad)
				drop(id, n);
			break;
		case OP_UNIT_PLACED:
			count(&r, 1);
			break;
		case OP_UNIT_UNPLACED:
			count(&r, -1);
			break;
		case OP_UNIT_DEFINED:
			skip_request(&r);
			break;
		case OP_UNIT_FORGOTTEN:
			read_str(&r, &n);
			break;
		default:
			return 1;
		}
	}
	return r.bad ? 1 : 0;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v) {
	p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
	return p + 4;
}

static uint8_t *put_str(uint8_t *p, const void *s, uint32_t len) {
	p = put_u32(p, len);
	memcpy(p, s, len);
	return p + len;
}

/* fleet_place returns the decision as address << 32 | length, or 0 for a
 * request that does not decode. */
EXPORT("fleet_place")
uint64_t fleet_place(const uint8_t *ptr, uint32_t len) {
	struct reader r = {ptr, len, 0};
	skip_request(&r);
	if (r.bad || r.left != 0)
		return 0;

	const uint32_t reason_len = sizeof drain_reason - 1;
	struct machine *best = NULL;
	uint32_t rejected = 0;
	uint64_t size = 4 + 4; /* chosen ID, count of rejections */
	for (uint32_t i = 0; i < n_machines; i++) { /* sorted by ID: the first of equals wins */
		struct machine *m = &machines[i];
		if (m->draining) {
			rejected++;
			size += 4 + m->id_len + 4 + reason_len;
			continue;
		}
		if (best == NULL || m->units < best->units)
			best = m;
	}
	if (best != NULL)
		size += best->id_len;
	if (size > UINT32_MAX)
		__builtin_trap();
	grow(&out, &cap_out, (uint32_t)size);

	uint8_t *p = out;
	p = best ? put_str(p, best->id, best->id_len) : put_u32(p, 0);
	p = put_u32(p, rejected);
	for (uint32_t i = 0; i < n_machines; i++) {
		if (machines[i].draining) {
			p = put_str(p, machines[i].id, machines[i].id_len);
			p = put_str(p, drain_reason, reason_len);
		}
	}
	return (uint64_t)(uintptr_t)out << 32 | (uint32_t)(p - out);
}

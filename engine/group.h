/*
 * group.h: the group stage — region-wide rules over the alerts of the shards.
 * Owns: per (group rule, region) the set of plants with a live alert of the
 * member rule at or above its level, and the group rule's own alert state.
 * Must never: run in a shard worker (it sees every shard's alerts), or apply
 * member changes out of event-time order.
 * DESIGN: runs in the output thread. Member alerts arrive from the workers in
 * no particular order across shards, so they wait in a buffer until every
 * worker has passed their time (each worker reports its progress: no later
 * alert of it can be earlier), then apply in (at, plant, device) order. The
 * count of a region changes at the `at` of the member alerts; each change is a
 * sample of the group rule (value = count), with the same grade, `for` and
 * clear semantics as a threshold rule. Group alerts have a region as subject,
 * no plant, device or value, and list the counted plants in `because`.
 */
#ifndef VG_GROUP_H
#define VG_GROUP_H

#include "engine/alert.h"
#include "engine/error.h"

struct vg_group_stage;

/** @returns NULL if the rule set has no group rules. Borrows @p rs. */
struct vg_group_stage *vg_group_create(const struct vg_ruleset *rs);
void vg_group_destroy(struct vg_group_stage *gs);

/** @brief Keep @p a if a group rule counts its rule. @thread output */
void vg_group_offer(struct vg_group_stage *gs, const struct vg_alert *a);

/**
 * @brief Apply the buffered member changes with at < @p safe (or all, with
 * VG_TS_MAX), emitting group alerts through @p emit. @thread output
 */
void vg_group_advance(struct vg_group_stage *gs, vg_ts safe,
                      void (*emit)(void *ctx, const struct vg_alert *a), void *ctx);


/**
 * Records: one per region code, named VG_GROUP_PREFIX + code, so a region's
 * state moves between instances with its plants. A region's owner is the
 * owner of its anchor: the plant of its latest counted member alert (group
 * rules need a region's plants in one instance; docs/state.md, "Limits").
 */
#define VG_GROUP_PREFIX "~gr:"

/**
 * @brief Hand @p fn the record of every region code whose state changed since
 * the last call (length 0: nothing left, delete it). A record holds the code's
 * regions (counted plants, group alert state, anchor), the member alerts
 * counted and the member changes still waiting for the workers' progress,
 * tagged with a fingerprint of the rule set.
 * @returns 0, VG_ENOMEM, or fn's error. @thread output
 */
int vg_group_export_changed(struct vg_group_stage *gs, vg_snapshot_fn fn, void *ctx);

/** @brief The anchor plant named in a region record (for ownership, before importing it). */
int vg_group_record_anchor(const struct vg_group_stage *gs, const void *data, size_t len, char *out,
                           size_t cap);

/** @brief Does the stage hold state of region @p code (a live count, an alert, waiting changes)? */
bool vg_group_holds(const struct vg_group_stage *gs, const char *code);

/**
 * @brief Restore region @p code from its record, unless the stage holds state
 * of it (what it holds is newer). A record of another rule set (any rule
 * changed) is ignored: that region's counts start afresh.
 * @returns 0, or VG_EINVAL for a damaged record (nothing applied). @thread output (or before it starts)
 */
int vg_group_import_region(struct vg_group_stage *gs, const char *code, const void *data, size_t len,
                           struct vg_error *err);

/** @brief The anchor plant of region @p code, or NULL if the stage has none. */
const char *vg_group_anchor(const struct vg_group_stage *gs, const char *code);

/**
 * @brief Forget every region whose anchor @p owns says is another instance's
 * (after a rebalance); the next owner loads its record. @thread output
 */
void vg_group_disown(struct vg_group_stage *gs, vg_owns_fn owns, void *ctx);

#endif

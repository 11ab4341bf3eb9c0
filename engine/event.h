/*
 * event.h: one normalised input message, as the parser hands it to the router.
 * Owns: the vocabulary of message kinds and quality flags. Must never: own
 * bytes; every string is a slice borrowed from the input line or parser scratch.
 */
#ifndef VG_EVENT_H
#define VG_EVENT_H

#include "engine/vigil.h"

enum vg_msg_kind {
    VG_MSG_SAMPLE = 1,      /* telemetry: plant, device, metric, value, ts */
    VG_MSG_EVENT = 2,       /* a report or event without a value */
    VG_MSG_ACK = 3,         /* {"type":"ack", …} */
    VG_MSG_MAINTENANCE = 4, /* {"type":"maintenance", …} */
};

/** Quality: "good"/N and S trigger threshold rules; M and C mute the point. */
enum vg_quality {
    VG_Q_GOOD = 0,     /* "good", or absent, or HJ 212 N */
    VG_Q_MANUAL,       /* HJ 212 S (manual entry) */
    VG_Q_BAD,          /* "bad" */
    VG_Q_UNCERTAIN,    /* "uncertain" */
    VG_Q_MAINTENANCE,  /* HJ 212 M */
    VG_Q_CALIBRATION,  /* HJ 212 C */
    VG_Q_FAULT,        /* HJ 212 D */
    VG_Q_COMMS,        /* HJ 212 B */
    VG_Q_STOPPED,      /* HJ 212 F */
    VG_Q_OVERRANGE,    /* HJ 212 T */
};

static inline bool vg_quality_triggers(int q)
{
    return q == VG_Q_GOOD || q == VG_Q_MANUAL;
}

/** A normalised message. Strings borrow from the line (or parser scratch). */
struct vg_sample {
    uint8_t kind;       /* enum vg_msg_kind */
    uint8_t quality;    /* enum vg_quality */
    struct vg_str plant, device;
    struct vg_str name; /* metric (SAMPLE) or event name (EVENT) */
    double value;       /* SAMPLE only */
    vg_ts ts;           /* event time, epoch ms */
    /* control messages */
    struct vg_str alert_id, by;
    vg_ts from, until;
};

#endif

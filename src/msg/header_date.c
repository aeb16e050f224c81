/* The Date field, RFC 5322 §3.3. */
#include "msg/header.h"

#include <stdlib.h>

static const char *const date_days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const date_months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

int msg_header_write_date(struct buf *out, time_t date, int tz_minutes, struct msg_error *err)
{
	/* §3.3: zone is +/-HHMM, hours 00..23 and minutes 00..59; anything
	 * else from a confused caller becomes UTC rather than a bad field. */
	if (tz_minutes <= -24 * 60 || tz_minutes >= 24 * 60)
		tz_minutes = 0;
	time_t local = date + (time_t)tz_minutes * 60;
	struct tm tm;
	if (!gmtime_r(&local, &tm) || tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999)
		return msg_error_set(err, MSG_ERR_USAGE, 0, "date out of range");
	int off = abs(tz_minutes);
	if (buf_printf(out, "Date: %s, %d %s %d %02d:%02d:%02d %c%02d%02d\r\n",
	               date_days[tm.tm_wday], tm.tm_mday, date_months[tm.tm_mon],
	               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	               tz_minutes < 0 ? '-' : '+', off / 60, off % 60) < 0)
		return msg_error_set(err, MSG_ERR_TOO_BIG, 0, "message too big");
	return 0;
}

/* ot_protocol.m - the Objective-C half of the bridge's test library (GCC's gobjc).
 *
 * GCC's runtime registers protocols only from compiled code, and @try/@catch needs the
 * compiler: a protocol for cls:protocols(), and an exception raised and caught inside the
 * callee, which the bridge must leave alone. */
#include <objc/runtime.h>

@protocol OTProbing
- (int)probe;
@end

Protocol *ot_protocol(void);
Protocol *ot_protocol(void) { return @protocol(OTProbing); }

int ot_catch_inside(id exc);
int ot_catch_inside(id exc) {
    @try {
        @throw exc;
    } @catch (id e) {
        return e == exc ? 1 : 2;
    }
    return 0;
}

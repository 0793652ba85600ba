import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The chat role's interface, shared by its in-process and HTTP forms. Later work adds methods here.
export const ChatContract = defineContract('chat', {
  status: statusMethod,
});
export type ChatClient = ClientOf<typeof ChatContract>;
